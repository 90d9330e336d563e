"""The protocol layer: the Rust asyncio protocol and the Record type."""

from .protocol import BUILTIN_TYPE_NAME_MAP, Protocol, Record, _create_record

__all__ = ("BUILTIN_TYPE_NAME_MAP", "Protocol", "Record", "_create_record")
