"""URL routes: students' pages, staff admin, accounts."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from api.api import api
from lorastudio import views
from lorastudio.forms import AdminLoginForm, LoginForm
from training.notifications.views import account_settings

admin.site.site_header = "LoRA Studio administration"
admin.site.site_title = "LoRA Studio admin"
admin.site.index_title = "Lab administration"
# Both login doors are throttled the same way (lorastudio/throttle.py).
admin.site.login_form = AdminLoginForm

urlpatterns = [
    path("", views.home, name="home"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(authentication_form=LoginForm),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password/",
        auth_views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "accounts/password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("settings/", account_settings, name="account-settings"),
    path("datasets/", include("datasets.urls")),
    path("api/v1/", api.urls),
    path("api-tokens/", include("api.urls")),
    path("", include("training.urls")),
    path("admin/", admin.site.urls),
]
