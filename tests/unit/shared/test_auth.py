"""Tokens and the permission decision (shared/auth): who gets in, who is told the object does not exist."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.auth.policy import (
    BUYER,
    OPERATOR,
    PAYER,
    PERSON,
    PRIMARY_ADMIN,
    SELF,
    SERVICE,
    FieldTarget,
    LookupTarget,
    decide,
    rule,
)
from shared.auth.principal import Kind, Principal
from shared.auth.tokens import TokenIssuer, TokenVerifier, public_keys_from_jwks
from shared.errors import InvalidInput, NotAllowed, NotFound, Unauthenticated

KEY = Ed25519PrivateKey.generate()
ISSUER = TokenIssuer(KEY, "tenure", "tenure")


def verifier(**kw) -> TokenVerifier:
    return TokenVerifier({"k": KEY.public_key()}, "tenure", "tenure", **kw)


# --- tokens ------------------------------------------------------------------------------------------


def test_a_person_token_names_the_person_and_grants_no_role():
    p = verifier().verify(ISSUER.person("Ada@Example.com"))
    assert p == Principal(Kind.PERSON, "ada@example.com", "ada@example.com")


def test_operator_and_service_are_claims_of_the_vendor_key():
    assert verifier().verify(ISSUER.operator("support@tenure.example")).kind is Kind.OPERATOR
    assert verifier().verify(ISSUER.service("billing")) == Principal(Kind.SERVICE, "service:billing")


@pytest.mark.parametrize(
    "token, says",
    [
        (ISSUER.person("ada@example.com", ttl_seconds=-120), "expired"),
        (TokenIssuer(Ed25519PrivateKey.generate(), "tenure", "tenure").operator(), "trusted key"),
        (TokenIssuer(KEY, "someone-else", "tenure").operator(), "issuer"),
        (TokenIssuer(KEY, "tenure", "another-app").person("ada@example.com"), "audience"),
        ("operator", "not a JWT"),
        (jwt.encode({"sub": "x", "tenure_role": "operator"}, "s" * 32, algorithm="HS256"), "not valid"),
    ],
)
def test_a_bad_token_is_unauthenticated(token, says):
    with pytest.raises(Unauthenticated) as e:
        verifier().verify(token)
    assert says in e.value.message


def test_an_unknown_role_claim_is_refused_rather_than_ignored():
    with pytest.raises(Unauthenticated):
        verifier().verify(ISSUER.mint("x@example.com", role="superuser"))


def test_a_remembered_token_is_not_served_past_its_expiry():
    now = [1_000_000.0]
    v = verifier(leeway=0, clock=lambda: now[0])
    token = ISSUER.mint("ada@example.com", email="ada@example.com", ttl_seconds=60, now=now[0])
    assert v.verify(token).email == "ada@example.com"
    now[0] += 61
    with pytest.raises(Unauthenticated):
        v.verify(token)


def test_an_identity_providers_jwks_verifies_its_rs256_tokens(tmp_path):
    idp = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(idp.public_key()))
    jwk["kid"] = "idp-1"
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    keys = public_keys_from_jwks(tmp_path / "jwks.json")
    token = jwt.encode(
        {"iss": "tenure", "aud": "tenure", "sub": "u-17", "email": "bo@example.no", "exp": time.time() + 60},
        idp,
        algorithm="RS256",
        headers={"kid": "idp-1"},
    )
    assert TokenVerifier(keys, "tenure", "tenure").verify(token).email == "bo@example.no"


def test_request_id_scopes_differ_between_callers_and_are_stable():
    ada, bo = Principal(Kind.PERSON, "ada@x.no", "ada@x.no"), Principal(Kind.PERSON, "bo@x.no", "bo@x.no")
    assert ada.scope != bo.scope and ada.scope == Principal(Kind.PERSON, "ada@x.no", "ada@x.no").scope
    svc = Principal(Kind.SERVICE, "service:subscription")
    assert svc.scope != Principal(Kind.SERVICE, "service:subscription", on_behalf_of="ada@x.no").scope


# --- the decision ------------------------------------------------------------------------------------


@dataclass
class Teams:
    roles_of: dict[tuple[str, str], frozenset[str]]

    def roles(self, account_id: str, email: str) -> frozenset[str]:
        return self.roles_of.get((account_id, email), frozenset())

    def known(self, account_id: str) -> bool:
        return any(a == account_id for a, _ in self.roles_of)


@dataclass
class Req:
    account_id: str = ""
    subscription_id: str = ""
    user_email: str = ""


TEAMS = Teams(
    {
        ("acc_a", "ada@a.no"): frozenset({BUYER, PRIMARY_ADMIN}),
        ("acc_a", "pia@a.no"): frozenset({PAYER}),
        ("acc_b", "bo@b.no"): frozenset({BUYER}),
    }
)
SUBS = {"sub_a": "acc_a"}
TARGETS = {
    "account": FieldTarget("account_id"),
    "subscription": LookupTarget("subscription_id", "subscription", "SUBSCRIPTION_NOT_FOUND", SUBS.get),
}
ADA = Principal(Kind.PERSON, "ada@a.no", "ada@a.no")
PIA = Principal(Kind.PERSON, "pia@a.no", "pia@a.no")
BO = Principal(Kind.PERSON, "bo@b.no", "bo@b.no")
OPS = Principal(Kind.OPERATOR, "support")
SVC = Principal(Kind.SERVICE, "service:billing")


def check(r, who, req):
    return decide("Rpc", r, who, req, TARGETS, TEAMS)


def test_the_buyer_acts_and_gets_their_roles():
    access = check(rule(BUYER, target="subscription"), ADA, Req(subscription_id="sub_a"))
    assert access.account_id == "acc_a" and access.roles == {BUYER, PRIMARY_ADMIN}


def test_a_stranger_is_told_the_object_does_not_exist_exactly_as_for_a_missing_one():
    r = rule(BUYER, target="subscription")
    with pytest.raises(NotFound) as stranger:
        check(r, BO, Req(subscription_id="sub_a"))
    with pytest.raises(NotFound) as missing:
        check(r, BO, Req(subscription_id="sub_zz"))
    assert stranger.value.reason == missing.value.reason == "SUBSCRIPTION_NOT_FOUND"
    assert stranger.value.message == "subscription sub_a not found"


def test_a_member_without_the_role_is_denied():
    with pytest.raises(NotAllowed):
        check(rule(BUYER, target="subscription"), PIA, Req(subscription_id="sub_a"))


def test_no_principal_is_unauthenticated_and_no_rule_is_denied():
    with pytest.raises(Unauthenticated):
        check(rule(PERSON), None, Req())
    with pytest.raises(NotAllowed):
        check(None, OPS, Req())


def test_operator_and_service_only_where_the_rule_names_them():
    assert check(rule(OPERATOR), OPS, Req()).principal is OPS
    with pytest.raises(NotAllowed):
        check(rule(OPERATOR), SVC, Req())
    with pytest.raises(NotAllowed):
        check(rule(SERVICE), OPS, Req())
    with pytest.raises(NotAllowed):
        check(rule(SERVICE, OPERATOR, target="account"), ADA, Req(account_id="acc_a"))


def test_a_new_account_opens_only_where_the_rule_allows_and_only_when_nobody_holds_it():
    opens = rule(BUYER, target="account", opens_account=True)
    assert check(opens, BO, Req(account_id="acc_new")).roles == frozenset()
    with pytest.raises(NotFound):
        check(opens, BO, Req(account_id="acc_a"))
    with pytest.raises(NotFound):
        check(rule(BUYER, target="account"), BO, Req(account_id="acc_new"))


def test_self_is_the_person_the_request_names():
    r = rule(SELF, SERVICE, self_field="user_email")
    assert check(r, PIA, Req(user_email="PIA@a.no")).principal is PIA
    with pytest.raises(NotAllowed):
        check(r, PIA, Req(user_email="ada@a.no"))


def test_an_empty_object_id_is_bad_input_for_a_person():
    with pytest.raises(InvalidInput):
        check(rule(BUYER, target="subscription"), ADA, Req())


def test_rules_refuse_unknown_principals_and_self_without_a_field():
    with pytest.raises(ValueError):
        rule("admin")
    with pytest.raises(ValueError):
        rule(SELF)


def test_a_choice_target_resolves_and_hides_as_the_target_it_picks():
    from shared.auth.policy import ChoiceTarget

    either = ChoiceTarget(
        lambda r: (
            (TARGETS["account"], r)
            if r.account_id
            else ((TARGETS["subscription"], r) if r.subscription_id else None)
        )
    )
    assert either(Req(subscription_id="sub_a")).account_id == "acc_a"
    assert either(Req(account_id="acc_b")).account_id == "acc_b"
    assert either(Req()).account_id == "" and either(Req()).missing is None
    assert either.not_found(Req(subscription_id="sub_a")).reason == "SUBSCRIPTION_NOT_FOUND"
    with pytest.raises(NotFound) as e:
        decide(
            "Rpc", rule(BUYER, target="either"), BO, Req(subscription_id="sub_a"), {"either": either}, TEAMS
        )
    assert e.value.message == "subscription sub_a not found"
