import base64
import hashlib
import re

from edge_agent.devices.anpr.auth import Authenticator


def digest_header(challenge: str, user: str, password: str, method: str, uri: str, nc: int = 1,
                  cnonce: str = "abc", realm: str | None = None) -> str:
    params = dict(re.findall(r'(\w+)="?([^",]+)"?', challenge))
    realm = realm or params["realm"]
    def md5(s):
        return hashlib.md5(s.encode()).hexdigest()
    ha1, ha2 = md5(f"{user}:{realm}:{password}"), md5(f"{method}:{uri}")
    response = md5(f"{ha1}:{params['nonce']}:{nc:08x}:{cnonce}:auth:{ha2}")
    return (f'Digest username="{user}", realm="{realm}", nonce="{params["nonce"]}", uri="{uri}", '
            f'qop=auth, nc={nc:08x}, cnonce="{cnonce}", response="{response}", algorithm=MD5')


def test_basic():
    auth = Authenticator()
    good = "Basic " + base64.b64encode(b"cam:secret").decode()
    bad = "Basic " + base64.b64encode(b"cam:guess").decode()
    kw = dict(username="cam", password="secret", method="POST", uri="/anpr/c1")
    assert auth.check("basic", good, **kw) == ""
    assert auth.check("basic", bad, **kw) == "wrong username or password"
    assert auth.check("basic", "Basic !!!", **kw) == "malformed basic credentials"
    assert auth.check("basic", "", **kw) == "no credentials"
    assert auth.check("digest", good, **kw) == "expected digest authentication"
    assert auth.challenge("basic").startswith("Basic realm=")


def test_digest_good_wrong_and_replayed():
    auth = Authenticator()
    kw = dict(username="cam", password="secret", method="POST", uri="/anpr/c1")
    challenge = auth.challenge("digest")
    assert auth.check("digest", digest_header(challenge, "cam", "secret", "POST", "/anpr/c1"), **kw) == ""
    # The same nonce count again is a replay; the next count is fine.
    assert auth.check("digest", digest_header(challenge, "cam", "secret", "POST", "/anpr/c1"), **kw) == \
        "replayed nonce count"
    assert auth.check("digest", digest_header(challenge, "cam", "secret", "POST", "/anpr/c1", nc=2), **kw) == ""
    assert auth.check("digest", digest_header(challenge, "cam", "wrong", "POST", "/anpr/c1", nc=3), **kw) == \
        "wrong username or password"
    assert auth.check("digest", digest_header(challenge, "cam", "secret", "POST", "/anpr/other", nc=4), **kw) == \
        "digest uri does not match the request"


def test_digest_forged_and_stale_nonce():
    now = [1000.0]
    auth = Authenticator(clock=lambda: now[0], nonce_ttl_s=60)
    kw = dict(username="cam", password="secret", method="POST", uri="/anpr/c1")
    other = Authenticator().challenge("digest")  # a nonce this listener never issued
    assert auth.check("digest", digest_header(other, "cam", "secret", "POST", "/anpr/c1"), **kw) == "unknown nonce"
    challenge = auth.challenge("digest")
    now[0] += 61
    assert auth.check("digest", digest_header(challenge, "cam", "secret", "POST", "/anpr/c1"), **kw) == "stale"
    assert "stale=true" in auth.challenge("digest", stale=True)
