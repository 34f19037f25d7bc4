"""The packet-space engine: sets of packets as BDDs.

``fields`` lays out the header bits, ``packetset`` holds the BDD manager and
the set algebra, ``encode`` turns model matches into sets, ``witness`` picks
one packet of a set, ``describe`` renders a set as readable regions and
``reach`` walks a ruleset symbolically (which packets reach which rule).
"""

from .describe import describe
from .encode import OpaqueError, encode, encode_bounds
from .fields import Layout
from .packetset import BACKEND, PacketSet, Space
from .witness import witness

__all__ = ["BACKEND", "Layout", "OpaqueError", "PacketSet", "Space", "describe", "encode",
           "encode_bounds", "witness"]
