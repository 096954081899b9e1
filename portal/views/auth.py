"""Sign-in, sign-out and (tenant site) sign-up. Which accounts may sign in is portal.auth's rule."""

from typing import Any

from django.conf import settings
from django.contrib.auth import login, logout
from django.contrib.auth.views import LoginView
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django.views.generic import FormView

from portal.auth import lockout_message
from portal.forms import SignInForm, SignUpForm, apply_service_error
from tenants.services import account_create


class SignInView(LoginView):
    form_class = SignInForm
    redirect_authenticated_user = True

    def get_template_names(self) -> list[str]:
        return [f"{settings.CANOPY_SITE}/sign_in.html"]


def locked_out(request: HttpRequest, original_response: Any = None, credentials: Any = None) -> HttpResponse:
    """django-axes' lockout answer (AXES_LOCKOUT_CALLABLE): the sign-in page saying why, with 429
    Too Many Requests rather than a bare 403 page."""
    # Unbound: validating the posted form would try to authenticate (and count a failure) again.
    form = SignInForm(request, initial={"username": request.POST.get("username", "")})
    context = {"form": form, "lockout": lockout_message(), "next": request.POST.get("next", "")}
    return render(request, f"{settings.CANOPY_SITE}/sign_in.html", context, status=429)


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("login")


class SignUpView(FormView):
    form_class = SignUpForm
    template_name = "tenant/sign_up.html"

    def form_valid(self, form: SignUpForm) -> HttpResponse:
        try:
            user = account_create(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password"],
                full_name=form.cleaned_data["full_name"],
            )
        except ValidationError as exc:
            apply_service_error(form, exc)
            return self.form_invalid(form)
        login(self.request, user, backend="portal.auth.SiteBackend")
        return redirect(reverse("tenant:plans"))
