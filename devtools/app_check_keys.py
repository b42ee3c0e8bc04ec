"""A stand-in for Firebase App Check's token service (which cannot be reached offline): an RSA key
whose public half is served as the JWKS Google publishes at
``https://firebaseappcheck.googleapis.com/v1/jwks``, and App Check tokens signed with it, with the
claims App Check puts in them. firebase_admin's own verification runs against it when the
functions are told its URL (``APP_CHECK_JWKS_URL``)."""

from __future__ import annotations

import json
import threading
import time
from http.server import ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.servers import JsonHandler

KEY_ID = "longform-test-key"
PROJECT_NUMBER = "123456789012"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class AppCheckKeys:
    """``with AppCheckKeys() as keys:`` serves the JWKS at ``keys.url``; ``keys.token(…)`` mints."""

    def __init__(self) -> None:
        self.key = new_key()
        jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwks = {"keys": [{**jwk, "kid": KEY_ID, "alg": "RS256", "use": "sig"}]}

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                self.answer(200, jwks) if self.path == "/v1/jwks" else self.answer(404, {"error": "not found"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/jwks"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def token(
        self,
        project: str,
        app_id: str = f"1:{PROJECT_NUMBER}:web:0123456789abcdef",
        expires_in: float = 3600,
        key: rsa.RSAPrivateKey | None = None,
    ) -> str:
        """An App Check token for ``app_id`` of ``project``, signed by this stand-in's key (or by
        ``key``, under the same key id: a forged signature)."""
        now = int(time.time())
        claims = {
            "iss": f"https://firebaseappcheck.googleapis.com/{PROJECT_NUMBER}",
            "sub": app_id,
            "aud": [f"projects/{PROJECT_NUMBER}", f"projects/{project}"],
            "iat": now - 60,
            "exp": int(now + expires_in),
        }
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": KEY_ID, "typ": "JWT"})

    def __enter__(self) -> AppCheckKeys:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
