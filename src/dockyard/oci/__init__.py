"""Pure data of the container world: digests, references, media types, OCI specs.

No I/O beyond hashing bytes handed in; every layer may import this package.
"""
