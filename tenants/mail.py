"""Mail to account holders, through Django's email backend (EMAIL_BACKEND: the console unless
configured). A mail that can't be sent is logged (without its links, which are credentials) and
reported to the caller, which tells the user; it never fails the request that triggered it."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)


def mail_send(*, to: str, subject: str, template: str, context: dict[str, Any]) -> bool:
    """Render `template` (plain text) and send it to one address; True if the backend took it."""
    body = render_to_string(template, context)
    try:
        send_mail(subject, body, None, [to])
    except OSError:  # smtplib.SMTPException and connection errors
        logger.warning("could not send mail (%s)", template, exc_info=True)
        return False
    return True


def tenant_signup_link(request: Any) -> Any:
    """`code -> URL` of the tenant portal's sign-up page with an invitation code filled in. Staff
    send invitations from the admin portal, which doesn't serve that page: CANOPY_TENANT_URL says
    where it is (default: the admin portal's host name on CANOPY_TENANT_PORT)."""
    host = request.get_host()
    if not host.endswith("]"):  # an IPv6 literal without a port keeps its colons
        host = host.rsplit(":", 1)[0]
    base = settings.CANOPY_TENANT_URL or f"{request.scheme}://{host}:{settings.CANOPY_TENANT_PORT}"
    return lambda code: f"{base.rstrip('/')}/signup/?invitation={code}"
