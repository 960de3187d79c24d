"""Certificates (api-compute.md §3.4): all admin only, the getters never see deleted rows."""

from __future__ import annotations

from conductor.db.models import Certificate
from conductor.handlers import plain

certificate_create = plain.create("certificate_create", Certificate)
certificate_get_all_by_project = plain.rows("certificate_get_all_by_project", Certificate,
                                            "project_id", read_deleted="no")
certificate_get_all_by_user = plain.rows("certificate_get_all_by_user", Certificate,
                                         "user_id", read_deleted="no")
certificate_get_all_by_user_and_project = plain.rows(
    "certificate_get_all_by_user_and_project", Certificate, "user_id", "project_id",
    read_deleted="no")
