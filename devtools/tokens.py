"""Firebase ID tokens as the Auth emulator issues them: unsigned JWTs (``alg: none``) that
firebase-admin accepts when FIREBASE_AUTH_EMULATOR_HOST is set, and that the Firestore
emulator evaluates rules against."""

from __future__ import annotations

import base64
import json
import time


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def emulator_id_token(uid: str, project: str, provider: str = "password", **claims: object) -> str:
    """An ID token of ``uid``, signed in with ``provider`` (``password``, ``google.com``, or
    ``anonymous``), with custom ``claims`` (as ``setCustomUserClaims`` adds them)."""
    now = int(time.time())
    payload = {
        "iss": f"https://securetoken.google.com/{project}",
        "aud": project,
        "auth_time": now,
        "user_id": uid,
        "sub": uid,
        "iat": now,
        "exp": now + 3600,
        "firebase": {"identities": {}, "sign_in_provider": provider},
        **claims,
    }
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(payload)}."
