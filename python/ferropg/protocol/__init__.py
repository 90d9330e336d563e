"""The protocol layer: the Rust asyncio protocol and the Record type."""

from .protocol import Protocol, Record, _create_record

__all__ = ("Protocol", "Record", "_create_record")
