from django.db import models
from django.db.models import Q


class TransactionStatus(models.TextChoices):
    COMPLETED = "completed"
    RETURNED = "returned"


class Transaction(models.Model):
    """An order. ``order_id`` is unique: a repeated order id updates the order, never duplicates it."""

    order_id = models.CharField(max_length=128)
    profile = models.ForeignKey("profiles.Profile", on_delete=models.CASCADE, related_name="transactions")
    value = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=TransactionStatus.choices, default=TransactionStatus.COMPLETED)
    time = models.DateTimeField()
    items = models.JSONField(default=list, blank=True)
    quantity = models.PositiveIntegerField(default=1, help_text="Units over all items (1 when no items are sent).")
    metadata = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=32, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-time", "-id"]
        indexes = [models.Index(fields=["profile", "-time"], name="transaction_profile_time_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["order_id"], name="transaction_order_id_unique", violation_error_message="Duplicate orderId."
            ),
            models.CheckConstraint(
                condition=Q(value__gte=0),
                name="transaction_value_nonnegative",
                violation_error_message="Negative value.",
            ),
            models.CheckConstraint(
                condition=Q(currency__regex=r"^[A-Z]{3}$"),
                name="transaction_currency_iso",
                violation_error_message="currency must be an ISO 4217 code.",
            ),
            models.CheckConstraint(
                condition=Q(status__in=TransactionStatus.values),
                name="transaction_status_valid",
                violation_error_message="Unknown status.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order_id} {self.value} {self.currency}"


class ProfileCommerce(models.Model):
    """A profile's commerce figures, refreshed set-based on every transaction write, and its RFM scores.

    Figures count completed orders; returned ones count only in ``total_returns``. Currencies are not
    converted: ``currency`` is the one of the latest order. RFM scores (1–5 against the whole customer
    base) and the segment are written by the ``rfm_recompute`` background task.
    """

    profile = models.OneToOneField(
        "profiles.Profile", on_delete=models.CASCADE, primary_key=True, related_name="commerce"
    )
    total_spent = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    total_orders = models.PositiveIntegerField(default=0)
    total_returns = models.PositiveIntegerField(default=0)
    avg_order = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    avg_price_point = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    first_order = models.DateTimeField(null=True, blank=True)
    last_order = models.DateTimeField(null=True, blank=True)
    avg_days_between_orders = models.FloatField(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True, default="")
    rfm_recency = models.PositiveSmallIntegerField(null=True, blank=True)
    rfm_frequency = models.PositiveSmallIntegerField(null=True, blank=True)
    rfm_monetary = models.PositiveSmallIntegerField(null=True, blank=True)
    rfm_segment = models.CharField(max_length=32, blank=True, default="")
    rfm_computed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["rfm_segment"], name="commerce_rfm_segment_idx")]

    def __str__(self) -> str:
        return f"commerce of {self.profile_id}"
