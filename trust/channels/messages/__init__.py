"""The secure channel's wire types, one module each (wire spec §3.4, §4.2):

* :mod:`.identity_and_credentials` — the handshake payload;
* :mod:`.padded` — ``SecureChannelPaddedMessage``, the plaintext of every record, holding one of
* :mod:`.payload` (a routed message), :mod:`.refresh_credentials`, :mod:`.close`.
"""

from trust.channels.messages.close import Close
from trust.channels.messages.identity_and_credentials import (
    MAX_IDENTITY_PAYLOAD_SIZE,
    IdentityAndCredentials,
)
from trust.channels.messages.padded import MAX_PLAINTEXT_SIZE, ChannelMessage, decode_message, pad
from trust.channels.messages.payload import Payload, encode_payload
from trust.channels.messages.refresh_credentials import RefreshCredentials

__all__ = [
    "MAX_IDENTITY_PAYLOAD_SIZE",
    "MAX_PLAINTEXT_SIZE",
    "ChannelMessage",
    "Close",
    "IdentityAndCredentials",
    "Payload",
    "RefreshCredentials",
    "decode_message",
    "encode_payload",
    "pad",
]
