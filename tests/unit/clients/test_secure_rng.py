"""SecureRng's fast paths give exactly the ChaCha20 keystream and the uniforms it defines."""

from __future__ import annotations

import os

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from clients.secure_noise import SecureRng


def test_the_stream_is_chacha20_over_zeros_in_any_chunking() -> None:
    key = os.urandom(32)
    reference = Cipher(algorithms.ChaCha20(key, bytes(16)), mode=None).encryptor()
    rng = SecureRng(key)
    for n in (1, 7, 64, 100, 65_536, 1_000_003, 5):
        assert rng.bytes(n) == reference.update(bytes(n))


def test_uniforms_are_the_streams_words_shifted_to_53_bits() -> None:
    key = bytes(range(32))
    words = np.frombuffer(SecureRng(key).bytes(8 * 1000), dtype=np.uint64)
    expected = (words >> np.uint64(11)).astype(np.float64) * 2.0**-53
    np.testing.assert_array_equal(SecureRng(key).uniform(1000), expected)
