"""Public addresses for a message's files: those inside a delivery (`inline:`) and remote photos alike.

The CRM and admins need a URL for a photo a citizen sent. The address names the inbox message and the
file's position, and carries an HMAC so that nobody can walk through the ids. Remote photos get the
same kind of address (served once the media worker has downloaded them, gateway/media_fetch.py), so
the platform's own URL, which may need a token or expire, is never handed to anyone.
"""

from __future__ import annotations

import hashlib
import hmac

from adapters.contract import MediaRef

INLINE_PREFIX = "inline:"


class MediaLinks:
    def __init__(self, *, secret: bytes, public_base_url: str) -> None:
        self._secret = secret
        self._base = public_base_url.rstrip("/")

    def signature(self, message_id: str, index: int) -> str:
        return hmac.new(self._secret, f"{message_id}/{index}".encode(), hashlib.sha256).hexdigest()[:32]

    def check(self, message_id: str, index: int, signature: str) -> bool:
        return hmac.compare_digest(self.signature(message_id, index), signature)

    def url(self, message_id: str, index: int) -> str:
        return f"{self._base}/media/{message_id}/{index}?sig={self.signature(message_id, index)}"

    def publish(self, message_id: str, media: list[MediaRef]) -> list[MediaRef]:
        """`media` with every ref's URL replaced by its Kanal address; the inbox keeps the original.

        The platform's file id goes too: it is of no use outside Kanal and names the platform's copy.
        """
        return [
            ref.model_copy(update={"url": self.url(message_id, index), "platform_id": None})
            for index, ref in enumerate(media)
        ]
