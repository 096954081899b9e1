from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants, plans and subscriptions"

    def ready(self) -> None:
        from portal import navigation
        from portal.access import register_subscription_scope

        from . import jobs  # noqa: F401  (registers the lifecycle actions' parent job kinds)
        from .models import Subscription
        from .navigation import NAVIGATION

        # Jobs, histories and every subscription's resources are scoped by this one rule.
        register_subscription_scope(Subscription.objects.visible_ids)
        navigation.register(*NAVIGATION)
