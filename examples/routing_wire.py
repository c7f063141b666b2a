"""Ockam's TCP wire format by hand: the spec's worked example, encoded and decoded.

Run: python examples/routing_wire.py
"""

from trust.routing import PREAMBLE, FrameDecoder, Route, decode_string, encode_frame, encode_string

# app (0#app) sends the Rust String "Hello" to the worker 0#echoer on the peer
frame = encode_frame(Route(["echoer"]), Route(["app"]), encode_string("Hello"))
print(frame.hex())  # 0000001983818200466563686f657281820043617070460548656c6c6f

# the receiving side, fed one byte at a time (each side sends the 0x01 preamble once)
decoder = FrameDecoder()
messages = []
for byte in PREAMBLE + frame:
    decoder.feed(bytes([byte]))
    messages.extend(decoder)
[msg] = messages
print(msg.onward_route, "|", msg.return_route, "|", decode_string(msg.payload))
