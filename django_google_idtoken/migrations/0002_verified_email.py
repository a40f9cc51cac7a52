import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

# The rules of emails.trusted_address, written out here so that this
# migration means the same whatever later code says: Google is authoritative
# for Gmail and for the Workspace domain named by hd; an OpenID Connect
# provider only with TRUST_EMAIL (read from the settings as they are when
# the migration runs); now.gg and anything else never.
_GOOGLE_MAIL_DOMAINS = {"gmail.com", "googlemail.com"}
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _trusted(provider, email, email_verified, hosted_domain, trusting):
    if not (email and email_verified and "@" in email):
        return ""
    address = email.translate(_ASCII_LOWER)
    domain = address.rpartition("@")[2]
    if provider == "google":
        hd = hosted_domain.translate(_ASCII_LOWER)
        if domain in _GOOGLE_MAIL_DOMAINS or (hd and domain == hd):
            return address
        return ""
    return address if provider in trusting else ""


def backfill(apps, schema_editor):
    """Record which existing addresses are trusted, and mark every user who
    has a linked account as created by this package: until now every such
    user got its token's email copied onto User.email, verified or not, so
    that address must not count as the project's own (LOCAL_EMAIL_VERIFIED)."""
    LinkedAccount = apps.get_model("django_google_idtoken", "LinkedAccount")
    ProvisionedUser = apps.get_model("django_google_idtoken", "ProvisionedUser")
    providers = getattr(settings, "GOOGLE_IDTOKEN", {}).get("PROVIDERS", {})
    trusting = {
        name
        for name, config in providers.items()
        if isinstance(config, dict)
        and config.get("TYPE") == "oidc"
        and config.get("TRUST_EMAIL") is True
    }
    rows = LinkedAccount.objects.exclude(email="").filter(email_verified=True)
    batch = []
    for account in rows.only("pk", "provider", "email", "email_verified", "hosted_domain").iterator(
        chunk_size=2000
    ):
        address = _trusted(
            account.provider, account.email, account.email_verified, account.hosted_domain, trusting
        )
        if address:
            account.verified_email = address
            batch.append(account)
        if len(batch) >= 2000:
            LinkedAccount.objects.bulk_update(batch, ["verified_email"])
            batch = []
    if batch:
        LinkedAccount.objects.bulk_update(batch, ["verified_email"])
    user_ids = LinkedAccount.objects.values_list("user_id", flat=True).distinct()
    pending = []
    for user_id in user_ids.iterator(chunk_size=2000):
        pending.append(ProvisionedUser(user_id=user_id))
        if len(pending) >= 2000:
            ProvisionedUser.objects.bulk_create(pending, ignore_conflicts=True)
            pending = []
    if pending:
        ProvisionedUser.objects.bulk_create(pending, ignore_conflicts=True)


class Migration(migrations.Migration):
    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("django_google_idtoken", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="ProvisionedUser",
            fields=[
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="user",
                    ),
                ),
                (
                    "created_at",
                    models.DateTimeField(
                        default=django.utils.timezone.now, editable=False, verbose_name="created"
                    ),
                ),
            ],
            options={
                "verbose_name": "provisioned user",
                "verbose_name_plural": "provisioned users",
            },
        ),
        migrations.AddField(
            model_name="linkedaccount",
            name="verified_email",
            field=models.CharField(
                blank=True, db_index=True, default="", max_length=254, verbose_name="verified email"
            ),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
