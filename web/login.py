"""``GET /login`` (a plain form), ``POST /login`` (sets the session cookie) and ``POST /logout``.

The cookie holds a random session id (only its SHA-256 is stored); it is HttpOnly,
SameSite=Lax and, when the page was served over https, Secure. A session lasts
``TRACKER_SESSION_HOURS``; changing a user's password or removing the user ends it.
"""
from __future__ import annotations

import html
from urllib.parse import urlsplit
from datetime import timedelta

from tracker.accounts import store as accounts
from tracker.app import app
from tracker.settings import settings
from web.auth import SESSION_COOKIE, TooManyAttempts, forget_session, is_https, password_access, require_same_origin
from web.db import request_connection
from web.errors import HtmlPage

FORM = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in: GPS tracker</title>
<style>body{{font:16px sans-serif;max-width:22em;margin:4em auto}}label,input,button{{display:block;width:100%;
margin:.3em 0}}input{{padding:.4em}}button{{padding:.5em;margin-top:1em}}.error{{color:#b00}}</style></head>
<body><h1>GPS tracker</h1>
{error}<form method="post" action="/login">
<label for="user">User</label><input id="user" name="user" autocomplete="username" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<input type="hidden" name="next" value="{next}">
<button type="submit">Sign in</button>
</form></body></html>
"""
MAX_FIELD = 1024


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (never another host)."""
    if (not target or not target.startswith("/") or target.startswith("//") or "\\" in target
            or any(ord(c) < 0x21 or ord(c) == 0x7F for c in target)):  # browsers drop tabs: /\t/x is //x
        return "/map"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/map"


def _form(web, next_path: str, error: str = "", status: int = 200, headers: dict | None = None):
    error_html = f'<p class="error" role="alert">{html.escape(error)}</p>\n' if error else ""
    return web.html(FORM.format(error=error_html, next=html.escape(next_path, quote=True)), status=status,
                    headers=headers)


@app.page("/login")
class Login(HtmlPage):
    async def get(self, request):
        return _form(self, safe_next(request.query.get("next")))

    async def post(self, request):
        require_same_origin(request)  # no signing a browser into someone else's account from elsewhere
        form = await request.post()
        user = str(form.get("user", ""))[:MAX_FIELD]
        password = str(form.get("password", ""))[:MAX_FIELD]
        next_path = safe_next(str(form.get("next", "")))
        try:
            access = await password_access(request, user, password, "session")
        except TooManyAttempts as exc:
            return _form(self, next_path, exc.message, status=429, headers=exc.extra_context["headers"])
        if access is None:
            return _form(self, next_path, "Wrong user name or password.", status=401)
        async with request_connection() as conn:
            session = await accounts.open_session(conn, access.user_id, timedelta(hours=settings.session_hours))
        response = self.html("", status=303, headers={"Location": next_path})
        response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="Lax", secure=is_https(request),
                            max_age=int(settings.session_hours * 3600), path="/")
        return response


@app.page("/logout")
class Logout(HtmlPage):
    async def post(self, request):
        require_same_origin(request)
        session = request.cookies.get(SESSION_COOKIE)
        if session:
            forget_session(session)
            async with request_connection() as conn:
                await accounts.close_session(conn, session)
        response = self.html("", status=303, headers={"Location": "/login"})
        response.del_cookie(SESSION_COOKIE, path="/")
        return response
