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

The statistics kind releases through OpenDP's vetted samplers only (all of them exact, with
OS randomness): `discrete_gaussian` and `discrete_laplace` for integer components (counts,
histogram bins), `gaussian_floats` and `laplace_floats` for float ones (sums). The float
samplers are OpenDP's floating-point-safe mechanisms: they round the input to a grid and
sample noise exactly on it, so the textbook attack on naive floating-point Laplace noise
(Mironov, "On significance of the least significant bits for differential privacy", CCS
2012) does not apply. The ledger charges these releases as the continuous Gaussian and
Laplace mechanisms, which is sound: their privacy loss is at most the continuous
mechanisms' at the same scale. The discrete Gaussian on an integer vector with L2
sensitivity Delta is (Delta^2 / (2 scale^2))-zCDP, exactly the continuous Gaussian's RDP
curve (C. Canonne, G. Kamath and T. Steinke, "The Discrete Gaussian for Differential
Privacy", NeurIPS 2020, Theorem 4 and its multivariate form in Section 2); the discrete
Laplace (two-sided geometric) mechanism with L1 sensitivity Delta is (Delta / scale)-DP, the
continuous Laplace's epsilon (same paper, which compares the two; A. Ghosh, T. Roughgarden
and M. Sundararajan, "Universally Utility-Maximizing Privacy Mechanisms", STOC 2009).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

__all__ = [
    "SecureRng",
    "discrete_gaussian",
    "discrete_laplace",
    "gaussian_floats",
    "laplace_floats",
]

_KEY_BYTES = 32
_NONCE_BYTES = 16
_MANTISSA_BITS = 53
_SLACK_BYTES = 64  # room `update_into` may ask beyond the data


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
        self._zeros = b""

    def bytes(self, n: int) -> bytes:
        """The next `n` bytes of the keystream."""
        return self._keystream(n).tobytes()

    def _keystream(self, n: int) -> npt.NDArray[np.uint8]:
        # The keystream is the encryption of zeros; `update_into` a reused input and a
        # fresh array is several times faster than `update`, which builds both.
        if len(self._zeros) < n:
            self._zeros = bytes(n)
        out = np.empty(n + _SLACK_BYTES, dtype=np.uint8)
        written = self._stream.update_into(memoryview(self._zeros)[:n], out.data)
        if written != n:
            raise RuntimeError(f"ChaCha20 gave {written} bytes of {n}")
        return out[:n]

    def _words(self, n: int) -> npt.NDArray[np.uint64]:
        return self._keystream(8 * n).view(np.uint64)

    def uniform(self, n: int) -> npt.NDArray[np.float64]:
        """`n` independent uniforms on [0, 1), each with 53 random bits."""
        words = self._words(n)
        return (words >> np.uint64(64 - _MANTISSA_BITS)).astype(np.float64) * 2.0**-_MANTISSA_BITS

    def poisson_mask(self, n: int, rate: float) -> npt.NDArray[np.bool_]:
        """Which of `n` rows a Poisson-sampled batch holds: each independently w.p. `rate`.

        Exactly `uniform(n) < rate`, compared as integers: u = k 2^-53 with k = w >> 11
        for a 64-bit word w, and u < rate iff k < t = ceil(rate 2^53) iff w < t 2^11.
        """
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"a sampling rate lies in [0, 1], got {rate!r}")
        if rate == 1.0:  # t 2^11 would be 2^64
            return np.ones(n, dtype=np.bool_)
        threshold = math.ceil(rate * 2.0**_MANTISSA_BITS) << (64 - _MANTISSA_BITS)
        return self._words(n) < np.uint64(threshold)

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

    Raises:
        ValueError: `scale` is not positive and finite (OpenDP would add no noise at 0).
    """
    checked = _check_scale(scale, "scale")  # OpenDP takes 0 for "no noise"
    import opendp.prelude as dp  # a compiled library: loaded only where noise is drawn

    dp.enable_features("contrib")
    measurement = dp.m.make_gaussian(
        dp.vector_domain(dp.atom_domain(T=int)), dp.l2_distance(T=int), scale=checked
    )
    return [int(v) for v in measurement([int(v) for v in values])]


def _check_scale(scale: float, name: str) -> float:
    if isinstance(scale, bool) or not isinstance(scale, int | float):
        raise ValueError(f"{name} must be a number, got {scale!r}")
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"{name} must be positive and finite, got {scale!r}")
    return float(scale)


def _check_floats(values: Sequence[float]) -> list[float]:
    floats = [float(v) for v in values]
    if not all(math.isfinite(v) for v in floats):
        raise ValueError("values to noise must be finite")
    return floats


def gaussian_floats(values: Sequence[float], std: float) -> list[float]:
    """Each float of `values` plus independent Gaussian noise of standard deviation `std`.

    OpenDP's `make_gaussian` over non-NaN floats with the L2 distance: floating-point safe,
    OS randomness. For a vector with L2 sensitivity Delta it is (Delta^2 / (2 std^2))-zCDP.

    Raises:
        ValueError: The scale is not positive and finite, or a value is not finite.
    """
    return _noised_floats(values, _check_scale(std, "std"), gaussian=True)


def laplace_floats(values: Sequence[float], scale: float) -> list[float]:
    """Each float of `values` plus independent Laplace noise of scale `scale` (std sqrt(2) b).

    OpenDP's `make_laplace` over non-NaN floats with the L1 distance: floating-point safe,
    OS randomness. For a vector with L1 sensitivity Delta it is (Delta / scale)-DP.

    Raises:
        ValueError: The scale is not positive and finite, or a value is not finite.
    """
    return _noised_floats(values, _check_scale(scale, "scale"), gaussian=False)


def _noised_floats(values: Sequence[float], scale: float, *, gaussian: bool) -> list[float]:
    """OpenDP's Gaussian (L2) or Laplace (L1) measurement over non-NaN floats at `scale`."""
    floats = _check_floats(values)
    if not floats:
        return []
    import opendp.prelude as dp  # a compiled library: loaded only where noise is drawn

    dp.enable_features("contrib")
    domain = dp.vector_domain(dp.atom_domain(T=float, nan=False))
    if gaussian:
        measurement = dp.m.make_gaussian(domain, dp.l2_distance(T=float), scale=scale)
    else:
        measurement = dp.m.make_laplace(domain, dp.l1_distance(T=float), scale=scale)
    return [float(v) for v in measurement(floats)]


def discrete_laplace(values: Sequence[int], scale: float) -> list[int]:
    """Each integer of `values` plus independent discrete Laplace noise of `scale`.

    P(noise = k) is proportional to exp(-|k| / scale): OpenDP's exact sampler with OS
    randomness. For an integer vector with L1 sensitivity Delta it is (Delta / scale)-DP,
    the continuous Laplace mechanism's epsilon; its variance, 2 e^(-1/b) / (1 - e^(-1/b))^2,
    is below the continuous 2 b^2.

    Raises:
        ValueError: The scale is not positive and finite.
    """
    b = _check_scale(scale, "scale")
    if not values:
        return []
    import opendp.prelude as dp  # a compiled library: loaded only where noise is drawn

    dp.enable_features("contrib")
    measurement = dp.m.make_laplace(
        dp.vector_domain(dp.atom_domain(T="i64")), dp.l1_distance(T="i64"), scale=b
    )
    return [int(v) for v in measurement([int(v) for v in values])]
