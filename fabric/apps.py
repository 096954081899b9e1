from django.apps import AppConfig


class FabricConfig(AppConfig):
    name = "fabric"
    verbose_name = "Fabric: stamps, clouds and virtual machines"

    def ready(self) -> None:
        from portal import jobs, navigation
        from tenants import plan_services

        from .drivers import DriverError, Unavailable
        from .navigation import NAVIGATION
        from .plan_service import VMCloudService

        plan_services.register(VMCloudService())
        navigation.register(*NAVIGATION)
        jobs.register_user_error(DriverError)
        jobs.register_transient_error(Unavailable)
