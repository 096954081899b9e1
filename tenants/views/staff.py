"""Admin portal pages of plans, add-ons, tenant accounts and subscriptions.

A plan is one page with all its services, as in Azure Pack: each registered service
(tenants.plan_services) brings its offer form and its quotas, so this module names none of them.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from portal.access import Capability, capability_required
from portal.exceptions import ServiceError
from portal.forms import apply_service_error, error_message
from portal.job_groups import group_children
from portal.models import Job
from portal.selectors import signup_policy
from tenants.filters import SubscriptionFilter
from tenants.forms_staff import (
    AddOnForm,
    ChangePlanForm,
    PlanCloneForm,
    PlanCreateForm,
    SignupInvitationForm,
    SubscriptionCreateForm,
    SuspendForm,
    quota_form,
    quota_initial,
)
from tenants.mail import tenant_signup_link
from tenants.models import (
    AddOn,
    AddOnState,
    Plan,
    PlanState,
    SignupInvitation,
    Subscription,
    SubscriptionState,
    SyncState,
    User,
)
from tenants.plan_services import (
    PlanOffer,
    addon_quotas,
    plan_limits,
    plan_offers,
    plan_quota_totals,
    plan_service,
    plan_services,
    subscription_quotas,
    subscriptions_over_quota,
)
from tenants.selectors import (
    account_list,
    addon_list,
    addons_for_subscription,
    plan_list,
    signup_invitation_list,
    subscription_history,
    subscription_list,
    subscription_resources,
    subscription_staff_list,
)
from tenants.services import (
    addon_save,
    addon_set_state,
    plan_clone,
    plan_create,
    plan_invitation_clear,
    plan_invitation_rotate,
    plan_service_remove,
    plan_service_set,
    plan_set_state,
    plan_update,
    signup_invitation_create,
    signup_invitation_revoke,
    subscription_activate,
    subscription_change_plan,
    subscription_create,
    subscription_delete,
    subscription_resync,
    subscription_suspend,
)

# Second lock behind the site's sign-in rule (only staff accounts sign in to the admin portal).

PAGE_SIZE = 50
# The lifecycle actions posted to subscription-action (delete has a confirmation page of its own).
SUBSCRIPTION_PAGE_ACTIONS = ("suspend", "activate", "resync")
# (target state, button label, button class) of the plan state actions.
PLAN_STATE_ACTIONS = [
    (PlanState.PUBLIC, "Make public", "btn"),
    (PlanState.PRIVATE, "Make private", "btn btn-secondary"),
    (PlanState.DECOMMISSIONED, "Decommission", "btn btn-danger"),
]
OVER_QUOTA_SHOWN = 20


def _plan_or_404(request: HttpRequest, pk: int) -> Plan:
    try:
        return plan_list(user=request.user).get(pk=pk)
    except Plan.DoesNotExist as exc:
        raise Http404 from exc


def _with_quotas(subscriptions: Any) -> list[Subscription]:
    """Each subscription with its quotas and over-quota ones (`sub.quotas`, `sub.over`), in a fixed
    number of queries for the page."""
    rows = list(subscriptions)
    quotas = subscription_quotas(rows)
    for sub in rows:
        sub.quotas = quotas.get(sub.pk, [])
        sub.over = [q for q in sub.quotas if q.over]
    return rows


@capability_required(Capability.VIEW)
def plan_list_page(request: HttpRequest) -> HttpResponse:
    page = Paginator(plan_list(user=request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    plans = list(page.object_list)
    offers = plan_offers([p.pk for p in plans])
    for plan in plans:
        plan.service_offers = offers[plan.pk]
    return render(request, "staff/tenants/plan_list.html", {"page": page, "plans": plans})


@capability_required(Capability.ADMINISTER)
@require_http_methods(["GET", "POST"])
def plan_create_page(request: HttpRequest) -> HttpResponse:
    form = PlanCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            plan = plan_create(**form.cleaned_data)
        except (ValidationError, ServiceError) as exc:
            apply_service_error(form, exc)
        else:
            messages.success(request, f"Plan '{plan}' created. Add a service, then make it public.")
            return redirect("staff:plan-edit", pk=plan.pk)
    return render(request, "staff/tenants/plan_form.html", {"form": form})


def _service_forms(
    request: HttpRequest, plan: Plan, bound: dict[str, tuple[Any, Any]], offers: list[PlanOffer]
) -> list[dict[str, Any]]:
    """Each registered service's section of the editor: offered or not, its offer and quota forms."""
    offered = {o.name: o for o in offers}
    rows = plan_limits([plan.pk]).get(plan.pk, {})
    sections = []
    for svc in plan_services():
        if svc.name in bound:
            offer_form, limits_form = bound[svc.name]
        else:
            offer_form = svc.offer_form(plan=plan, data=None, user=request.user, prefix=f"{svc.name}-offer")
            limits_form = quota_form(svc, initial=quota_initial(svc, rows), prefix=f"{svc.name}-quota")
        sections.append(
            {"service": svc, "offer": offered.get(svc.name), "offer_form": offer_form, "quota_form": limits_form}
        )
    return sections


def _over_quota(request: HttpRequest, plan: Plan) -> tuple[dict[Any, Any], dict[Any, list[Any]], list[Subscription]]:
    """The plan's live subscriptions' quotas (read once), those over quota, and the first few of
    them with their quotas for the panel: a fixed number of queries whatever their number."""
    live = subscription_list(user=request.user).filter(plan=plan).exclude(state="deleted")
    live_quotas = subscription_quotas(list(live.select_related(None).only("pk", "plan_id")))
    over = {pk: rows for pk, quotas in live_quotas.items() if (rows := [q for q in quotas if q.over])}
    over_rows = _with_quotas(live.filter(pk__in=list(over)[:OVER_QUOTA_SHOWN])) if over else []
    return live_quotas, over, over_rows


@capability_required(Capability.VIEW)
@require_GET
def plan_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The plan, read-only, for every staff role (an operator reads plans but can't change them):
    its facts, use against what it sold, the services it offers with their quotas and allow-lists,
    its add-ons and its subscriptions. Administrators reach the editor from here."""
    plan = _plan_or_404(request, pk)
    live_quotas, over, over_rows = _over_quota(request, plan)
    offers = plan_offers([plan.pk])[plan.pk]
    page = Paginator(subscription_list(user=request.user).filter(plan=plan), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    context = {
        "plan": plan,
        "offers": offers,
        "totals": plan_quota_totals(plan, quotas=live_quotas, offers=offers),
        "over_count": len(over),
        "over_rows": over_rows,
        "addons": list(plan.addons.order_by("name")),
        "state_actions": [a for a in PLAN_STATE_ACTIONS if a[0] != plan.state],
        "page": page,
        "subscriptions": _with_quotas(page.object_list),
    }
    return render(request, "staff/tenants/plan_detail.html", context)


def _plan_editor(
    request: HttpRequest,
    plan: Plan,
    *,
    details_form: Any = None,
    bound: dict[str, tuple[Any, Any]] | None = None,
    status: int = 200,
) -> HttpResponse:
    if details_form is None:
        details_form = PlanCreateForm(
            initial={
                "name": plan.name,
                "description": plan.description,
                "max_subscriptions_per_account": plan.max_subscriptions_per_account,
            }
        )
    _, over, over_rows = _over_quota(request, plan)
    offers = plan_offers([plan.pk])[plan.pk]
    context = {
        "plan": plan,
        "details_form": details_form,
        "clone_form": PlanCloneForm(initial={"name": f"{plan.name} (copy)"}),
        "sections": _service_forms(request, plan, bound or {}, offers),
        "over_count": len(over),
        "over_rows": over_rows,
        "addons": list(plan.addons.order_by("name")),
        "state_actions": [a for a in PLAN_STATE_ACTIONS if a[0] != plan.state],
    }
    return render(request, "staff/tenants/plan_edit.html", context, status=status)


# The plan editor: administrators only, even to open it (operators read the plan page).
@capability_required(Capability.ADMINISTER)
@require_http_methods(["GET", "POST"])
def plan_edit_page(request: HttpRequest, pk: int) -> HttpResponse:
    """The plan editor: its details (POST saves them), services with their quotas, state,
    invitation code and clone."""
    plan = _plan_or_404(request, pk)
    form = None
    if request.method == "POST":
        form = PlanCreateForm(request.POST)
        if form.is_valid():
            try:
                plan_update(plan=plan, **form.cleaned_data)
            except (ValidationError, ServiceError) as exc:
                apply_service_error(form, exc)
            else:
                messages.success(request, f"Plan '{plan}' saved.")
                return redirect("staff:plan-edit", pk=plan.pk)
    return _plan_editor(request, plan, details_form=form)


def _over_quota_message(plan: Plan, over: dict[Any, list[Any]]) -> str:
    names = dict(Subscription.objects.filter(pk__in=list(over)[:OVER_QUOTA_SHOWN]).values_list("pk", "name"))
    parts = []
    for pk, quotas in list(over.items())[:OVER_QUOTA_SHOWN]:
        what = ", ".join(f"{q.label} {q.used} of {q.limit}{' ' + q.unit if q.unit else ''} (+{q.over})" for q in quotas)
        parts.append(f"{names.get(pk, pk)}: {what}")
    more = f" and {len(over) - OVER_QUOTA_SHOWN} more" if len(over) > OVER_QUOTA_SHOWN else ""
    return (
        f"{len(over)} subscription(s) of '{plan}' are now over quota; they keep their resources but can't "
        f"create new ones: {'; '.join(parts)}{more}."
    )


@capability_required(Capability.ADMINISTER)
@require_POST
def plan_service_page(request: HttpRequest, pk: int, service: str) -> HttpResponse:
    """Add a service to the plan or save its offer and quotas; the change reaches existing
    subscriptions at once, and the page then names those now over quota."""
    plan = _plan_or_404(request, pk)
    try:
        svc = plan_service(service)
    except ServiceError as exc:
        raise Http404 from exc
    offer_form = svc.offer_form(plan=plan, data=request.POST, user=request.user, prefix=f"{svc.name}-offer")
    limits_form = quota_form(svc, data=request.POST, prefix=f"{svc.name}-quota")
    if offer_form.is_valid() and limits_form.is_valid():
        try:
            plan_service_set(
                plan=plan, service=svc.name, offer=offer_form.cleaned_data, quotas=limits_form.cleaned_data
            )
        except (ValidationError, ServiceError) as exc:
            if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
                for field, errors in exc.error_dict.items():
                    target = limits_form if field in limits_form.fields else offer_form
                    target.add_error(field if field in target.fields else None, errors)
            else:
                apply_service_error(offer_form, exc)
        else:
            messages.success(request, f"{svc.label} of '{plan}' saved; existing subscriptions have the new quotas now.")
            live = Subscription.objects.filter(plan=plan).exclude(state="deleted").only("pk", "plan_id")
            over = subscriptions_over_quota(live)
            if over:
                messages.warning(request, _over_quota_message(plan, over))
            return redirect("staff:plan-edit", pk=plan.pk)
    return _plan_editor(request, plan, bound={svc.name: (offer_form, limits_form)}, status=400)


@capability_required(Capability.ADMINISTER)
@require_POST
def plan_service_remove_page(request: HttpRequest, pk: int, service: str) -> HttpResponse:
    plan = _plan_or_404(request, pk)
    try:
        svc = plan_service(service)
        plan_service_remove(plan=plan, service=svc.name)
    except (ServiceError, ValidationError) as exc:
        if isinstance(exc, ServiceError) and exc.status == 404:
            raise Http404 from exc
        messages.error(request, error_message(exc))
    else:
        messages.success(request, f"'{plan}' no longer offers {svc.label.lower()}.")
    return redirect("staff:plan-edit", pk=plan.pk)


@capability_required(Capability.ADMINISTER)
@require_POST
def plan_clone_page(request: HttpRequest, pk: int) -> HttpResponse:
    plan = _plan_or_404(request, pk)
    form = PlanCloneForm(request.POST)
    if form.is_valid():
        try:
            clone = plan_clone(plan=plan, name=form.cleaned_data["name"])
        except (ServiceError, ValidationError) as exc:
            messages.error(request, error_message(exc))
        else:
            messages.success(request, f"Plan '{clone}' created as a private copy of '{plan}'.")
            return redirect("staff:plan-edit", pk=clone.pk)
    else:
        messages.error(request, "The copy needs a name.")
    return redirect("staff:plan-edit", pk=plan.pk)


@capability_required(Capability.ADMINISTER)
@require_POST
def plan_invitation_page(request: HttpRequest, pk: int) -> HttpResponse:
    """Generate or rotate the plan's invitation code (shown once), or withdraw it."""
    plan = _plan_or_404(request, pk)
    if request.POST.get("action") == "clear":
        plan_invitation_clear(plan=plan)
        messages.success(request, f"'{plan}' has no invitation code now: the old one no longer works.")
        return redirect("staff:plan-edit", pk=plan.pk)
    try:
        code = plan_invitation_rotate(plan=plan)
    except ServiceError as exc:
        messages.error(request, error_message(exc))
    else:
        messages.success(
            request,
            f"Invitation code of '{plan}': {code} — copy it now, it is shown only once. "
            "Tenants enter it on their Plans page to subscribe; any earlier code no longer works.",
        )
    return redirect("staff:plan-edit", pk=plan.pk)


@capability_required(Capability.ADMINISTER)
@require_POST
def plan_state_page(request: HttpRequest, pk: int) -> HttpResponse:
    plan = _plan_or_404(request, pk)
    try:
        plan_set_state(plan=plan, state=request.POST.get("state", ""))
    except (ServiceError, ValidationError) as exc:
        messages.error(request, error_message(exc))
    else:
        messages.success(request, f"Plan '{plan}' is now {plan.get_state_display().lower()}.")
    return redirect("staff:plan", pk=plan.pk)


# --- add-ons -----------------------------------------------------------------------------------------


@capability_required(Capability.VIEW)
def addon_list_page(request: HttpRequest) -> HttpResponse:
    page = Paginator(addon_list(user=request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [{"addon": a, "quotas": addon_quotas(a), "plans": list(a.plans.all())} for a in page.object_list]
    return render(request, "staff/tenants/addon_list.html", {"page": page, "rows": rows})


def _addon_or_404(request: HttpRequest, pk: int) -> AddOn:
    try:
        return addon_list(user=request.user).get(pk=pk)
    except AddOn.DoesNotExist as exc:
        raise Http404 from exc


@capability_required(Capability.ADMINISTER)
@require_http_methods(["GET", "POST"])
def addon_form_page(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """Create an add-on, or edit one (the change reaches the subscriptions holding it at once)."""
    addon = _addon_or_404(request, pk) if pk is not None else None
    form = AddOnForm(request.POST or None, initial=AddOnForm.initial_of(addon) if addon else None)
    if request.method == "POST" and form.is_valid():
        try:
            saved = addon_save(addon=addon, **form.service_data())
        except (ValidationError, ServiceError) as exc:
            if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
                for field, errors in exc.error_dict.items():
                    name = field.replace(".", "__")
                    form.add_error(name if name in form.fields else None, errors)
            else:
                apply_service_error(form, exc)
        else:
            messages.success(request, f"Add-on '{saved}' saved.")
            return redirect("staff:addons")
    return render(request, "staff/tenants/addon_form.html", {"form": form, "addon": addon})


@capability_required(Capability.ADMINISTER)
@require_POST
def addon_state_page(request: HttpRequest, pk: int) -> HttpResponse:
    addon = _addon_or_404(request, pk)
    try:
        addon_set_state(addon=addon, state=request.POST.get("state", ""))
    except ValidationError as exc:
        messages.error(request, error_message(exc))
    else:
        done = "retired: it is sold no more" if addon.state == AddOnState.RETIRED else "on sale again"
        messages.success(request, f"Add-on '{addon}' is {done}.")
    return redirect("staff:addons")


# --- subscriptions -------------------------------------------------------------------------------


@capability_required(Capability.VIEW)
def subscription_list_page(request: HttpRequest) -> HttpResponse:
    """Every subscription, newest first, with search and filters (tenants.filters, shared with the
    API); a bad filter value is a form error and lists nothing."""
    filters = SubscriptionFilter(
        request.GET or None, queryset=subscription_staff_list(user=request.user), request=request
    )
    page = Paginator(filters.qs, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "staff/tenants/subscription_list.html",
        {
            "page": page,
            "filters": filters,
            "filtered": any(request.GET.get(name) for name in SubscriptionFilter.base_filters),
            "subscriptions": _with_quotas(page.object_list),
        },
    )


@never_cache
@capability_required(Capability.ADMINISTER)
@require_http_methods(["GET", "POST"])
def invitation_list_page(request: HttpRequest) -> HttpResponse:
    """Sign-up invitations with the form to send one; the new code shows once, in this response.
    Administrators only (the roles branch declares it)."""
    form = SignupInvitationForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        try:
            created = signup_invitation_create(by=request.user, link=tenant_signup_link(request), **form.cleaned_data)
        except (ValidationError, ServiceError) as exc:
            apply_service_error(form, exc)
        else:
            form = SignupInvitationForm()
    page = Paginator(signup_invitation_list(user=request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "page": page,
        "invitations": page.object_list,
        "created": created,
        "policy": signup_policy(),
        "settings_url": reverse("staff:settings"),
    }
    return render(request, "staff/tenants/invitation_list.html", context, status=201 if created else 200)


def _subscribable_plans(request: HttpRequest) -> Any:
    """What staff may assign: any plan that isn't decommissioned, private ones included."""
    return plan_list(user=request.user).exclude(state=PlanState.DECOMMISSIONED)


# Assigning a plan to an account is selling it: administrators only.
@capability_required(Capability.ADMINISTER)
@require_http_methods(["GET", "POST"])
def subscription_create_page(request: HttpRequest) -> HttpResponse:
    form = SubscriptionCreateForm(request.POST or None, plans=_subscribable_plans(request))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            owner = account_list(user=request.user).get(email__iexact=data["owner"].strip())
        except User.DoesNotExist:
            form.add_error("owner", "No tenant account has this email address.")
        else:
            try:
                subscription = subscription_create(owner=owner, plan=data["plan"], name=data["name"], by=request.user)
            except (ValidationError, ServiceError) as exc:
                apply_service_error(form, exc)
            else:
                messages.success(request, f"Subscription '{subscription}' created for {owner.email}.")
                return redirect("staff:subscription", pk=subscription.pk)
    return render(request, "staff/tenants/subscription_form.html", {"form": form})


def _subscription_or_404(request: HttpRequest, pk: Any) -> Subscription:
    try:
        return subscription_staff_list(user=request.user).get(pk=pk)
    except (Subscription.DoesNotExist, ValidationError) as exc:
        raise Http404("No such subscription.") from exc


@capability_required(Capability.VIEW)
def subscription_detail(request: HttpRequest, pk: Any) -> HttpResponse:
    """The subscription: quotas (plan + add-ons = effective, used, over), the add-ons it holds,
    resources, the last lifecycle action's progress (parent and children, polled), what it left,
    history and the actions its state allows. To htmx (sent when a polled job ends), only the
    summary partial."""
    (subscription,) = _with_quotas([_subscription_or_404(request, pk)])
    job = subscription.lifecycle_job
    children: list[Job] = list(group_children(job)) if job is not None else []
    context = {
        "subscription": subscription,
        "quotas": subscription.quotas if subscription.state != SubscriptionState.DELETED else [],
        "addons": [(a, n, addon_quotas(a)) for a, n in addons_for_subscription(subscription=subscription) if n],
        "resources": subscription_resources(subscription),
        "job": job,
        "children": children,
        "polled": [job, *children] if job is not None else [],
        "history": subscription_history(user=request.user, subscription=subscription),
        "suspend_form": SuspendForm(),
        "plan_form": ChangePlanForm(plans=_subscribable_plans(request).exclude(pk=subscription.plan_id)),
        "busy": subscription.sync_state == SyncState.SYNCING,
        "out_of_sync": subscription.sync_state == SyncState.OUT_OF_SYNC,
    }
    template = "staff/tenants/subscription_detail.html"
    if request.htmx and not request.htmx.boosted:
        template += "#subscription-summary"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _lifecycle_done(request: HttpRequest, subscription: Subscription, job: Job, did: str) -> None:
    if job.is_finished:
        messages.success(request, f"Subscription '{subscription}' {did}.")
    else:
        messages.success(request, f"Subscription '{subscription}' {did}; its resources follow ({job.step}).")


@capability_required(Capability.ADMINISTER)
@require_POST
def invitation_revoke_page(request: HttpRequest, pk: Any) -> HttpResponse:
    try:
        invitation = signup_invitation_list(user=request.user).get(pk=pk)
    except SignupInvitation.DoesNotExist as exc:
        raise Http404 from exc
    signup_invitation_revoke(invitation=invitation)
    messages.success(request, f"The invitation for {invitation.email} is revoked.")
    return redirect("staff:invitations")


# The lifecycle of what a tenant bought: operators run it (changing the plan is apart, below).
@capability_required(Capability.OPERATE)
@require_POST
def subscription_action_page(request: HttpRequest, pk: Any, action: str) -> HttpResponse:
    """Suspend (with a reason), activate or re-sync; refusals become messages on the detail page."""
    subscription = _subscription_or_404(request, pk)
    try:
        if action == "suspend":
            form = SuspendForm(request.POST)
            if not form.is_valid():
                messages.error(request, "Say why the subscription is suspended: the tenant sees it.")
                return redirect("staff:subscription", pk=subscription.pk)
            job = subscription_suspend(subscription=subscription, reason=form.cleaned_data["reason"], by=request.user)
            _lifecycle_done(request, subscription, job, "suspended")
        elif action == "activate":
            job = subscription_activate(subscription=subscription, by=request.user)
            _lifecycle_done(request, subscription, job, "activated")
        elif action == "resync":
            job = subscription_resync(subscription=subscription, by=request.user)
            _lifecycle_done(request, subscription, job, "is being re-synchronized")
        else:
            raise Http404("No such action.")  # SUBSCRIPTION_PAGE_ACTIONS are all handled above
    except (ServiceError, ValidationError) as exc:
        messages.error(request, error_message(exc))
    return redirect("staff:subscription", pk=subscription.pk)


@capability_required(Capability.ADMINISTER)
@require_POST
def subscription_change_plan_page(request: HttpRequest, pk: Any) -> HttpResponse:
    """Move the subscription to another plan (what is sold: administrators only); a refusal names
    each quota the current use doesn't fit."""
    subscription = _subscription_or_404(request, pk)
    plan_form = ChangePlanForm(request.POST, plans=_subscribable_plans(request))
    if not plan_form.is_valid():
        messages.error(request, "Choose the plan to move the subscription to.")
        return redirect("staff:subscription", pk=subscription.pk)
    try:
        subscription_change_plan(subscription=subscription, plan=plan_form.cleaned_data["plan"], by=request.user)
    except (ServiceError, ValidationError) as exc:
        messages.error(request, error_message(exc))
    else:
        messages.success(request, f"Subscription '{subscription}' moved to plan '{plan_form.cleaned_data['plan']}'.")
    return redirect("staff:subscription", pk=subscription.pk)


@capability_required(Capability.OPERATE)
@require_http_methods(["GET", "POST"])
def subscription_delete_page(request: HttpRequest, pk: Any) -> HttpResponse:
    """Delete, confirmed on a page of its own: every resource is deprovisioned through jobs."""
    subscription = _subscription_or_404(request, pk)
    if request.method == "POST":
        try:
            job = subscription_delete(subscription=subscription, by=request.user)
        except ServiceError as exc:
            messages.error(request, exc.message)
        else:
            _lifecycle_done(request, subscription, job, "deleted")
        return redirect("staff:subscription", pk=subscription.pk)
    context = {"subscription": subscription, "resources": subscription_resources(subscription)}
    return render(request, "staff/tenants/subscription_delete.html", context)
