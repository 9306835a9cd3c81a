"""What the notification service asks other services: the account team (entitlement), the payers
and invoice PDFs (billing)."""

from __future__ import annotations

from dataclasses import dataclass

from services.notification.domain.model import Person, Role
from shared.errors import NotFound
from tenure.billing.v1 import billing_pb2
from tenure.common.v1 import common_pb2
from tenure.entitlement.v1 import entitlement_pb2

_TEAM_ROLES = (common_pb2.ROLE_BUYER, common_pb2.ROLE_PRIMARY_ADMIN, common_pb2.ROLE_SECONDARY_ADMIN)
_ROLE_OF = {
    common_pb2.ROLE_BUYER: Role.BUYER,
    common_pb2.ROLE_PRIMARY_ADMIN: Role.PRIMARY_ADMIN,
    common_pb2.ROLE_SECONDARY_ADMIN: Role.SECONDARY_ADMIN,
    common_pb2.ROLE_PAYER: Role.PAYER,
    common_pb2.ROLE_USER: Role.USER,
}


@dataclass(frozen=True, slots=True)
class Pdf:
    filename: str
    content: bytes


class Peers:
    """Clients of entitlement and billing (ServiceClient: deadlines, retries, domain errors)."""

    def __init__(self, entitlement, billing) -> None:
        self.entitlement = entitlement
        self.billing = billing

    def team(self, account_id: str) -> list[Person]:
        """The buyer and the admins of an account (users are not needed for routing)."""
        people: dict[str, Person] = {}
        for role in _TEAM_ROLES:
            token = ""
            while True:
                try:
                    resp = self.entitlement.ListMembers(
                        entitlement_pb2.ListMembersRequest(
                            account_id=account_id, role=role, page_size=500, page_token=token
                        )
                    )
                except NotFound:
                    return []
                for m in resp.members:
                    roles = frozenset(_ROLE_OF[r] for r in m.roles if r in _ROLE_OF)
                    known = people.get(m.email.lower())
                    if known:
                        roles = roles | known.roles
                    people[m.email.lower()] = Person(m.email, m.name, m.language, roles)
                token = resp.next_page_token
                if not token:
                    break
        return list(people.values())

    def payers(self, account_id: str) -> list[Person]:
        try:
            resp = self.billing.ListPayers(billing_pb2.ListPayersRequest(account_id=account_id))
        except NotFound:
            return []
        return [Person(p.email, p.name, p.language, frozenset({Role.PAYER})) for p in resp.payers]

    def invoice_pdf(self, invoice_id: str) -> Pdf | None:
        try:
            resp = self.billing.GetInvoicePdf(billing_pb2.GetInvoicePdfRequest(invoice_id=invoice_id))
        except NotFound:
            return None
        return Pdf(resp.filename or f"{invoice_id}.pdf", resp.pdf)
