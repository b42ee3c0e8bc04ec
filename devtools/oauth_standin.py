"""A stand-in for Google's OAuth 2.0 token endpoint, and a throwaway service-account key that
points at it: Application Default Credentials then yield real bearer tokens offline, so the
Google client libraries (google-genai always sends one) run unchanged against local stand-ins.

    POST /token  grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<RS256 JWT>
      →  {"access_token", "expires_in", "token_type": "Bearer"}

The assertion's signature is checked against the key this module made, as Google checks it
against the service account's public key.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.servers import JsonHandler

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLIENT_EMAIL = "longform-emulators@demo-longform.iam.gserviceaccount.com"
AUDIENCE = "https://oauth2.googleapis.com/token"  # what Google's token endpoint requires, wherever it is asked


@dataclass
class OAuthStandIn:
    """``with OAuthStandIn() as oauth:`` serves ``oauth.token_uri``; ``oauth.issued`` lists the tokens."""

    issued: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    def write_service_account(self, path: Path, project: str) -> Path:
        """A service-account key file (the format ``gcloud iam service-accounts keys create`` writes)."""
        pem = self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        info = {
            "type": "service_account",
            "project_id": project,
            "private_key_id": secrets.token_hex(20),
            "private_key": pem,
            "client_email": CLIENT_EMAIL,
            "client_id": "100000000000000000001",
            "token_uri": self.token_uri,
        }
        path.write_text(json.dumps(info, indent=2))
        path.chmod(0o600)
        return path

    def _grant(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        if form.get("grant_type") != [JWT_BEARER] or len(form.get("assertion", [])) != 1:
            return 400, {"error": "unsupported_grant_type"}
        try:
            claims = jwt.decode(
                form["assertion"][0],
                self._key.public_key(),
                algorithms=["RS256"],
                audience=AUDIENCE,
                options={"require": ["iss", "aud", "exp", "iat"]},
            )
        except jwt.PyJWTError as exc:
            return 400, {"error": "invalid_grant", "error_description": str(exc)}
        if claims["iss"] != CLIENT_EMAIL:
            return 400, {"error": "invalid_grant", "error_description": "unknown service account"}
        token = "ya29.local-" + secrets.token_urlsafe(24)
        with self._lock:
            self.issued.append(token)
        return 200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

    def __enter__(self) -> OAuthStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(oauth: OAuthStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            status, payload = oauth._grant(parse_qs(body)) if self.path == "/token" else (404, {"error": "not_found"})
            self.answer(status, payload)

    return Handler
