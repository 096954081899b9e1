"""Mail to account holders, through Django's email backend (EMAIL_BACKEND: the console unless
configured). A mail that can't be sent is logged (without its links, which are credentials) and
reported to the caller, which tells the user; it never fails the request that triggered it."""

from __future__ import annotations

import logging
from typing import Any

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
