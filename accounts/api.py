"""Accounts API: tokens, the signed-in user, the company, its users, its audit log and its jobs."""

from django.conf import settings
from django.db import transaction
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.authentication import CodedAuthenticationFailed, token_pair_for
from accounts.models import AuditLog, Company, Job, JobKindChoices, JobState, RetentionPolicy, User
from kangaroo import errors
from kangaroo.api.filters import IsoDateTimeFilter
from kangaroo.api.permissions import CanManageUsers, IsAuthenticatedUser, IsCompanyUser
from kangaroo.api.viewsets import TenantViewSet
from kangaroo.context import client_ip
from kangaroo.errors import KangarooError

# --- Tokens -------------------------------------------------------------------------------


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField(read_only=True, help_text="Short-lived; send as `Authorization: Bearer`.")
    refresh = serializers.CharField(read_only=True, help_text="Exchange at /auth/token/refresh; single use.")


class LoginSerializer(serializers.Serializer):
    username = serializers.CharField(
        max_length=300,
        help_text="The login name: `username@company` (the company's slug); platform staff have none.",
    )
    password = serializers.CharField(max_length=256, trim_whitespace=False, style={"input_type": "password"})


class RefreshSerializer(serializers.Serializer):
    refresh = serializers.CharField()


class PublicAuthView(APIView):
    """Token endpoints: no credentials needed, but a failure is still a 401 with a challenge."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get_authenticate_header(self, request):
        return 'Bearer realm="api"'


class TokenObtainView(PublicAuthView):
    @extend_schema(
        tags=["auth"],
        request=LoginSerializer,
        responses={200: TokenPairSerializer},
        summary="Log in: exchange a login name (`username@company`) and password for a token pair",
        description=(
            "After repeated failures for this username from this address, or from this address, "
            "answers 429 `login_throttled` with `Retry-After`; a username failing from many "
            "addresses is slowed to one attempt per backoff period. While the server already "
            "checks as many passwords as it allows at once, answers 503 `login_busy` with "
            "`Retry-After` (retry then; the same for a right and a wrong password)."
        ),
    )
    def post(self, request):
        data = LoginSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_authenticate(
            username=data.validated_data["username"],
            password=data.validated_data["password"],
            ip_address=client_ip(request),
        )
        if user.company_id is None:
            raise KangarooError(errors.NO_COMPANY)
        return Response(token_pair_for(user))


class TokenRefreshView(PublicAuthView):
    @extend_schema(
        tags=["auth"],
        request=RefreshSerializer,
        responses={200: TokenPairSerializer},
        summary="Rotate a refresh token: the old one is spent, a new pair is returned",
        description=(
            "A refresh token works once. Presenting a spent one again is taken as theft: every "
            "token of that login (its family) is revoked, and the client must log in again."
        ),
    )
    def post(self, request):
        data = RefreshSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            pair = services.token_refresh(token=data.validated_data["refresh"])
        except KangarooError as exc:
            raise CodedAuthenticationFailed(exc.error) from None
        return Response(pair)


class LogoutView(APIView):
    permission_classes = [IsAuthenticatedUser]

    @extend_schema(
        tags=["auth"],
        request=None,
        responses={204: None},
        summary="Log out: revoke every access and refresh token of this user",
    )
    def post(self, request):
        services.user_logged_out(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordChangeSerializer(serializers.Serializer):
    old_password = serializers.CharField(trim_whitespace=False)
    new_password = serializers.CharField(trim_whitespace=False)


class PasswordChangeView(APIView):
    permission_classes = [IsAuthenticatedUser]

    @extend_schema(
        tags=["auth"],
        request=PasswordChangeSerializer,
        responses={204: None},
        summary="Change the password; every token issued so far is revoked",
    )
    def post(self, request):
        data = PasswordChangeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.user_password_change(
            user=request.user,
            old_password=data.validated_data["old_password"],
            new_password=data.validated_data["new_password"],
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- The signed-in user and their company ---------------------------------------------------


POLICY_LANGUAGE_CODES = ", ".join(f"`{code}`" for code, _name in settings.LANGUAGES)


class CompanySerializer(serializers.ModelSerializer):
    retention_policy = serializers.CharField(
        source="current_policy.text",
        required=False,
        max_length=services.RETENTION_POLICY_MAX_CHARS,
        help_text="The retention policy people are shown when asked for consent, in its main language "
        "(`retention_policy_language`). A changed text becomes the next version.",
    )
    retention_policy_language = serializers.CharField(
        source="current_policy.language",
        required=False,
        max_length=20,
        help_text=f"The policy's main language ({POLICY_LANGUAGE_CODES}): its text is shown to a reader whose "
        "language has none. Changing it needs a text in that language (400 `retention_policy_main_text_missing`); "
        "a language the product does not have is 400 `retention_policy_language_unknown`. A change becomes the "
        "next version.",
    )
    retention_policy_texts = serializers.DictField(
        source="current_policy.texts",
        required=False,
        child=serializers.CharField(allow_blank=True, max_length=services.RETENTION_POLICY_MAX_CHARS),
        help_text=f"The policy's text in each language it is written in, by language code ({POLICY_LANGUAGE_CODES}),"
        " the main one included. Written, it changes the languages it names and keeps the others: an empty text "
        "takes a language's text away (its readers are then shown the main text); the main language's cannot be "
        "taken away (400 `retention_policy_main_text_missing`). A change of any text becomes the next version, "
        "one number for all its languages.",
    )
    retention_policy_version = serializers.IntegerField(
        source="current_policy.version", read_only=True, help_text="What a consent must name (`policy_version`)."
    )
    retention_policy_date = serializers.DateTimeField(
        source="current_policy.created_at", read_only=True, help_text="When this version was saved."
    )

    class Meta:
        model = Company
        fields = [
            "id", "name", "slug", "time_zone", "address", "work_start", "work_end", "date_order",
            "face_match_threshold", "consent_required", "retention_visitor_days", "retention_stranger_days",
            "retention_event_days", "retention_inactive_days", "retention_audit_days", "retention_policy",
            "retention_policy_language", "retention_policy_texts", "retention_policy_version", "retention_policy_date",
            "created_at",
        ]  # fmt: skip
        read_only_fields = ["id", "slug", "created_at"]

    def to_representation(self, company):
        company.current_policy = services.retention_policy_current(company=company)
        return super().to_representation(company)


class UserSerializer(serializers.ModelSerializer):
    login = serializers.CharField(source="login_name", read_only=True, help_text="What this user signs in with.")
    password = serializers.CharField(
        write_only=True,
        required=False,
        trim_whitespace=False,
        help_text="Optional: without one the user sets it by e-mail.",
    )

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "login",
            "email",
            "first_name",
            "last_name",
            "role",
            "language",
            "is_active",
            "last_login",
            "date_joined",
            "password",
        ]
        read_only_fields = ["id", "last_login", "date_joined"]


class MeSerializer(serializers.ModelSerializer):
    company = CompanySerializer(read_only=True)
    login = serializers.CharField(source="login_name", read_only=True, help_text="What this user signs in with.")

    class Meta:
        model = User
        fields = ["id", "username", "login", "email", "first_name", "last_name", "role", "language", "company"]
        read_only_fields = ["id", "username", "role", "company"]


class MeView(APIView):
    permission_classes = [IsCompanyUser]  # viewers too may edit their own profile
    http_method_names = ["get", "patch", "options", "head"]

    @extend_schema(tags=["me"], responses=MeSerializer, summary="The signed-in user")
    def get(self, request):
        return Response(MeSerializer(request.user).data)

    @extend_schema(
        tags=["me"], request=MeSerializer, responses=MeSerializer, summary="Change one's own name, e-mail or language"
    )
    def patch(self, request):
        data = MeSerializer(request.user, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        user = services.user_update(
            company=request.user.company, actor=request.user, user=request.user, **data.validated_data
        )
        return Response(MeSerializer(user).data)


class CompanyView(APIView):
    permission_classes = [CanManageUsers]
    http_method_names = ["get", "patch", "options", "head"]

    @extend_schema(tags=["me"], responses=CompanySerializer, summary="The signed-in user's company")
    def get(self, request):
        return Response(CompanySerializer(request.user.company).data)

    @extend_schema(
        tags=["me"],
        request=CompanySerializer,
        responses=CompanySerializer,
        summary="Change the company's settings: name, time zone, working hours, face match threshold, "
        "consent, retention windows and retention policy (owners)",
    )
    def patch(self, request):
        data = CompanySerializer(request.user.company, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        policy = values.pop("current_policy", {})
        company = services.company_update(
            company=request.user.company,
            actor=request.user,
            retention_policy=policy.get("text"),
            retention_policy_texts=policy.get("texts"),
            retention_policy_language=policy.get("language"),
            **values,
        )
        return Response(CompanySerializer(company).data)


class RetentionPolicySerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by_repr", help_text="Who saved this version.")
    text = serializers.CharField(read_only=True, help_text="The text in the main language (`language`).")
    language = serializers.CharField(read_only=True, help_text=f"The main language ({POLICY_LANGUAGE_CODES}).")
    texts = serializers.DictField(
        read_only=True,
        child=serializers.CharField(),
        help_text="The version's text in each language it was written in, by language code, the main one included: "
        "a consent's words are `texts[policy_language]`.",
    )

    class Meta:
        model = RetentionPolicy
        fields = ["id", "version", "text", "language", "texts", "created_by", "created_at"]
        read_only_fields = fields


@extend_schema(tags=["me"])
class RetentionPolicyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Every version of the company's retention policy, the latest (current) first, with its
    text in each language, so the words behind any consent can be read. Owners change it
    through `PATCH /company`."""

    model = RetentionPolicy
    serializer_class = RetentionPolicySerializer

    def list(self, request, *args, **kwargs):
        services.retention_policy_current(company=self.company)  # a company's first version, written on first read
        return super().list(request, *args, **kwargs)

    def scope(self, queryset):
        return queryset.order_by("-version")


# --- The company's users ----------------------------------------------------------------------


@extend_schema(tags=["users"])
class UserViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    TenantViewSet,
):
    """The company's users. Everyone reads; owners add, change and remove."""

    model = User
    serializer_class = UserSerializer
    permission_classes = [CanManageUsers]
    filterset_fields = ["role", "is_active"]

    def scope(self, queryset):
        return queryset.select_related("company").order_by("username")

    @extend_schema(
        examples=[
            OpenApiExample(
                "A new admin",
                request_only=True,
                value={"username": "mei", "email": "mei@example.com", "role": "admin", "password": "s3cret-Pass-2026"},
            )
        ]
    )
    def create(self, request, *args, **kwargs):
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer):
        serializer.instance = services.user_create(company=self.company, actor=self.actor, **serializer.validated_data)

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        data.pop("username", None)  # logins are fixed once issued
        password = data.pop("password", None)
        with transaction.atomic():  # a refused password leaves the profile as it was
            user = services.user_update(company=self.company, actor=self.actor, user=serializer.instance, **data)
            if password:
                services.user_password_set(company=self.company, actor=self.actor, user=user, password=password)
        serializer.instance = user

    def perform_destroy(self, instance):
        services.user_delete(company=self.company, actor=self.actor, user=instance)


# --- Audit log --------------------------------------------------------------------------------


class AuditLogSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_repr")
    object_type = serializers.SerializerMethodField()

    class Meta:
        model = AuditLog
        fields = [
            "id",
            "created_at",
            "actor",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "changes",
            "ip_address",
            "user_agent",
        ]

    def get_object_type(self, entry) -> str | None:
        return entry.object_type.model if entry.object_type_id else None


class AuditLogFilter(filters.FilterSet):
    since = IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    action = filters.CharFilter()
    actor = filters.CharFilter(field_name="actor_repr")

    class Meta:
        model = AuditLog
        fields = ["action", "actor", "since", "until"]


@extend_schema(tags=["audit"])
class AuditLogViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Who did what, when and from where, newest first. Read-only."""

    model = AuditLog
    selector = staticmethod(selectors.audit_log_list)
    serializer_class = AuditLogSerializer
    filterset_class = AuditLogFilter


# --- Jobs -----------------------------------------------------------------------------------


class JobSerializer(serializers.ModelSerializer):
    kind = serializers.ChoiceField(
        choices=JobKindChoices(), read_only=True, help_text="What the job does; the admin's Jobs page names it."
    )
    started_by = serializers.CharField(source="started_by.username", default=None, allow_null=True)
    percent = serializers.IntegerField(allow_null=True, help_text="done of total, in percent; null without a total")

    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "key",
            "state",
            "done",
            "total",
            "failed",
            "percent",
            "attempts",
            "error",
            "started_by",
            "created_at",
            "started_at",
            "finished_at",
        ]


class JobFilter(filters.FilterSet):
    state = filters.ChoiceFilter(choices=JobState.choices)
    kind = filters.ChoiceFilter(choices=JobKindChoices())

    class Meta:
        model = Job
        fields = ["state", "kind"]


@extend_schema(tags=["jobs"])
class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """The company's background jobs, newest first, with their progress. Read-only: poll a
    job's detail to follow it."""

    model = Job
    selector = staticmethod(selectors.job_list)
    serializer_class = JobSerializer
    filterset_class = JobFilter
