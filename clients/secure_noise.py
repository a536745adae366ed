"""Secure randomness for every DP release at the node: a ChaCha20 stream keyed from the OS.

DP noise that a coordinator could predict is no noise: it could subtract it. Seeding
torch's generator is not enough: `torch.manual_seed` keeps only the low 32 bits of its seed
for CPU draws (seeds 5 and 5 + 2**32 give the same noise), a search any coordinator can
run, and Mersenne Twister is not a cryptographic generator anyway. Here every draw comes
from ChaCha20 (RFC 8439, through the `cryptography` package) keyed with 256 bits from
`os.urandom`: a cryptographically secure stream whose key never leaves the process.

Three kinds of draws are made from it:

* uniforms on [0, 1) with 53 random bits, for Poisson sampling masks;
* Gaussian noise for DP-SGD, Box-Muller from those uniforms, summed as Holohan & Braghin
  2021 (Sec. 5.1) advise - four draws at std s divided by two - so that the floating-point
  representation of one draw no longer gives its seed away (the fix Opacus' `secure_mode`
  applies, which needs `torchcsprng`, not installable here);
* discrete Gaussian noise for integer statistics, from OpenDP's vetted sampler (Canonne,
  Kamath & Steinke 2020), which draws its own randomness from the OS through OpenSSL.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

__all__ = ["SecureRng", "discrete_gaussian"]

_KEY_BYTES = 32
_NONCE_BYTES = 16
_MANTISSA_BITS = 53


class SecureRng:
    """A ChaCha20 keystream with a fresh 256-bit key from `os.urandom`.

    Args:
        key: Only for tests that must show two keys give different streams; a node never
            passes one.
    """

    def __init__(self, key: bytes | None = None) -> None:
        key = os.urandom(_KEY_BYTES) if key is None else key
        if len(key) != _KEY_BYTES:
            raise ValueError(f"a ChaCha20 key has {_KEY_BYTES} bytes, got {len(key)}")
        # The counter starts at zero; one key is used for one stream only.
        cipher = Cipher(algorithms.ChaCha20(key, bytes(_NONCE_BYTES)), mode=None)
        self._stream = cipher.encryptor()

    def bytes(self, n: int) -> bytes:
        """The next `n` bytes of the keystream."""
        return self._stream.update(bytes(n))

    def uniform(self, n: int) -> npt.NDArray[np.float64]:
        """`n` independent uniforms on [0, 1), each with 53 random bits."""
        words = np.frombuffer(self.bytes(8 * n), dtype=np.uint64)
        return (words >> np.uint64(64 - _MANTISSA_BITS)).astype(np.float64) * 2.0**-_MANTISSA_BITS

    def poisson_mask(self, n: int, rate: float) -> npt.NDArray[np.bool_]:
        """Which of `n` rows a Poisson-sampled batch holds: each independently w.p. `rate`."""
        return self.uniform(n) < rate

    def _standard_normal(self, n: int) -> npt.NDArray[np.float64]:
        pairs = (n + 1) // 2
        u = self.uniform(2 * pairs)
        # 1 - u lies in (0, 1]: the logarithm is finite.
        radius = np.sqrt(-2.0 * np.log1p(-u[:pairs]))
        angle = 2.0 * math.pi * u[pairs:]
        return np.concatenate((radius * np.cos(angle), radius * np.sin(angle)))[:n]

    def gaussian(self, shape: Sequence[int], std: float) -> npt.NDArray[np.float64]:
        """Gaussian noise N(0, std^2) of `shape`, as a sum of four draws over two.

        The sum of four independent N(0, std^2) draws divided by two is N(0, std^2) again;
        Holohan & Braghin 2021 show that it hides each draw's floating-point footprint.
        """
        n = int(np.prod(shape, dtype=np.int64))
        draws = self._standard_normal(4 * n).reshape(4, n)
        noise: npt.NDArray[np.float64] = (draws.sum(axis=0) / 2.0 * std).reshape(tuple(shape))
        return noise


def discrete_gaussian(values: Sequence[int], scale: float) -> list[int]:
    """Each integer of `values` plus independent discrete Gaussian noise of `scale`.

    OpenDP's sampler is exact (no floating point in the draw) and takes its randomness from
    the OS. For an integer query with L2 sensitivity 1 it is (1 / (2 scale^2))-zCDP
    (Canonne, Kamath & Steinke 2020, Theorem 4), the RDP curve of the continuous Gaussian
    mechanism with noise multiplier `scale`, which is what the ledger charges.
    """
    import opendp.prelude as dp  # a compiled library: loaded only where noise is drawn

    dp.enable_features("contrib")
    measurement = dp.m.make_gaussian(
        dp.vector_domain(dp.atom_domain(T=int)), dp.l2_distance(T=int), scale=float(scale)
    )
    return [int(v) for v in measurement([int(v) for v in values])]
