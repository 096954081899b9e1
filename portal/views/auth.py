"""Sign-in, sign-out, password change and reset (both sites); sign-up and email verification (tenant
site). Which accounts may sign in is portal.auth's rule; who may sign up is tenants.services'."""

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.contrib.messages.views import SuccessMessageMixin
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.views.decorators.http import require_POST
from django.views.generic import FormView

from portal import audit
from portal.access import Capability, capability_required, public
from portal.auth import lockout_message
from portal.exceptions import ServiceError
from portal.forms import SignInForm, SignUpForm, SitePasswordResetForm, apply_service_error, error_message
from portal.models import SignupPolicy
from portal.selectors import signup_policy
from portal.services import totp_device_confirmed
from portal.views import safe_next
from portal.views.security import pend_sign_in
from tenants.services import account_signup, email_verification_send, email_verify


class SignInView(auth_views.LoginView):
    """Email and password; on the admin portal, an account with a confirmed TOTP device goes on to
    the code step (portal.views.security) instead of being signed in."""

    form_class = SignInForm
    redirect_authenticated_user = True

    def get_template_names(self) -> list[str]:
        return [f"{settings.CANOPY_SITE}/sign_in.html"]

    def form_valid(self, form: SignInForm) -> HttpResponse:
        user = form.get_user()
        if settings.CANOPY_SITE == "staff" and totp_device_confirmed(user) is not None:
            return pend_sign_in(self.request, user, self.get_success_url())
        return super().form_valid(form)


sign_in = public(SignInView.as_view())


def locked_out(request: HttpRequest, original_response: Any = None, credentials: Any = None) -> HttpResponse:
    """django-axes' lockout answer (AXES_LOCKOUT_CALLABLE): the sign-in page saying why, with 429
    Too Many Requests rather than a bare 403 page."""
    # Unbound: validating the posted form would try to authenticate (and count a failure) again.
    form = SignInForm(request, initial={"username": request.POST.get("username", "")})
    context = {"form": form, "lockout": lockout_message(), "next": request.POST.get("next", "")}
    return render(request, f"{settings.CANOPY_SITE}/sign_in.html", context, status=429)


@public
@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("login")


def _verification_link(request: HttpRequest) -> Any:
    return lambda token: request.build_absolute_uri(reverse("verify-email", args=[token]))


class SignUpView(FormView):
    """The tenant sign-up page, as the provider's sign-up policy (set in the admin portal) allows:
    open, invitation only (an invitation code, from the link in the invitation email) or closed."""

    form_class = SignUpForm
    template_name = "tenant/sign_up.html"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        self.policy = signup_policy()
        if self.policy == SignupPolicy.CLOSED:
            return render(request, self.template_name, {"closed": True})
        return super().dispatch(request, *args, **kwargs)

    def get_form_kwargs(self) -> dict[str, Any]:
        kwargs = super().get_form_kwargs()
        kwargs["invitation"] = "required" if self.policy == SignupPolicy.INVITATION else "optional"
        if code := self.request.GET.get("invitation"):
            kwargs["initial"] = {**kwargs.get("initial", {}), "invitation_code": code}
        return kwargs

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_context_data(**kwargs), "invitation_only": self.policy == SignupPolicy.INVITATION}

    def form_valid(self, form: SignUpForm) -> HttpResponse:
        try:
            user = account_signup(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password"],
                full_name=form.cleaned_data["full_name"],
                invitation_code=form.cleaned_data.get("invitation_code", ""),
            )
        except (ValidationError, ServiceError) as exc:
            apply_service_error(form, exc)
            return self.form_invalid(form)
        login(self.request, user, backend="portal.auth.SiteBackend")
        if user.email_verified:
            messages.success(self.request, "Welcome to Canopy: your account is ready.")
        elif email_verification_send(user=user, link=_verification_link(self.request)):
            messages.info(
                self.request,
                f"We sent a link to {user.email}: open it to verify your address, then subscribe to a plan.",
            )
        else:
            messages.warning(self.request, "We couldn't send the verification email: use 'Send the link again'.")
        return redirect(reverse("tenant:plans"))


def verify_email(request: HttpRequest, token: str) -> HttpResponse:
    """The link in the verification email. It only sets the account's verified time, which a second
    visit (or a mail scanner fetching the link) leaves as it is, so a GET may do it."""
    try:
        user = email_verify(token=token)
    except ValidationError as exc:
        return render(request, "tenant/verify_email.html", {"error": error_message(exc)}, status=400)
    messages.success(request, f"Thank you: {user.email} is verified.")
    if request.user.is_authenticated and request.user.pk == user.pk:
        return redirect("tenant:plans")
    return redirect("login")


@login_required
@require_POST
def verify_email_resend(request: HttpRequest) -> HttpResponse:
    """Send the verification link again, to the signed-in account's own address only (so this can't
    be used to mail anyone, or to learn which addresses have accounts)."""
    try:
        sent = email_verification_send(user=request.user, link=_verification_link(request))  # type: ignore[arg-type]
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        if sent:
            messages.success(request, f"We sent a new link to {request.user.email}.")  # type: ignore[union-attr]
        else:
            messages.error(request, "We couldn't send the email just now: try again in a minute.")
    return redirect(safe_next(request, default=reverse("tenant:plans")))


class PasswordChangeView(SuccessMessageMixin, auth_views.PasswordChangeView):
    """Change one's own password (both portals); the session stays signed in."""

    form_class = PasswordChangeForm
    template_name = "components/password_change.html"
    success_message = "Your password is changed."

    def get_success_url(self) -> str:
        return reverse(f"{settings.CANOPY_SITE}:dashboard")

    def form_valid(self, form: Any) -> HttpResponse:
        with transaction.atomic():  # the entry commits with the new password
            response = super().form_valid(form)
            audit.record("account.password_change", obj=form.user, changes=audit.PASSWORD_CHANGED)
        return response


class PasswordResetView(auth_views.PasswordResetView):
    """Ask for a reset link by email. The answer is the same whether or not the address has an
    account on this portal, so the page tells nobody which addresses do."""

    form_class = SitePasswordResetForm
    template_name = "components/password_reset.html"
    email_template_name = "email/password_reset.txt"
    subject_template_name = "email/password_reset_subject.txt"
    success_url = reverse_lazy("password-reset-sent")

    def form_valid(self, form: Any) -> HttpResponse:
        # Which address was asked for, not whether it has an account (the page tells nobody either).
        audit.record("account.password_reset_request", object_repr=form.cleaned_data["email"])
        return super().form_valid(form)


class PasswordResetSentView(auth_views.PasswordResetDoneView):
    template_name = "components/password_reset_sent.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "components/password_reset_confirm.html"
    success_url = reverse_lazy("password-reset-complete")

    def form_valid(self, form: Any) -> HttpResponse:
        with transaction.atomic():  # the entry commits with the new password
            response = super().form_valid(form)
            audit.record("account.password_reset", obj=form.user, actor=form.user, changes=audit.PASSWORD_CHANGED)
        return response


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "components/password_reset_complete.html"


def password_urls() -> list:
    """The password pages, the same on both sites (each URLconf includes them)."""
    from django.urls import path

    # Changing one's own password is for every account (any staff role); the reset pages are open.
    change = capability_required(Capability.VIEW, tenants=True)(PasswordChangeView.as_view())
    return [
        path("password/", change, name="password-change"),
        path("password-reset/", public(PasswordResetView.as_view()), name="password-reset"),
        path("password-reset/sent/", public(PasswordResetSentView.as_view()), name="password-reset-sent"),
        path(
            "password-reset/<uidb64>/<token>/",
            public(PasswordResetConfirmView.as_view()),
            name="password-reset-confirm",
        ),
        path("password-reset/done/", public(PasswordResetCompleteView.as_view()), name="password-reset-complete"),
    ]
