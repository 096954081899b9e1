"""The "API tokens" pages, included by both sites' URLconfs (namespaces `staff` and `tenant`)."""

from django.urls import path

from tenants.views import tokens

urlpatterns = [
    path("api-tokens/", tokens.token_list_page, name="tokens"),
    path("api-tokens/<uuid:pk>/revoke/", tokens.token_revoke_page, name="token-revoke"),
]
