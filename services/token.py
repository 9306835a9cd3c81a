"""`python -m services.token --email ada@example.com` prints a person's token; `--operator` an operator's;
`--email sam@reseller.example --partner ACME` the token of partner ACME's staff member Sam (rules §9).

Tokens are signed with the vendor's key (TENURE_AUTH_SIGNING_KEY_FILE, or the embedded default under
TENURE_AUTH_KEY_DIR, made here when it does not exist yet), so the services accept them:

    grpcurl -plaintext -H "authorization: Bearer $(python -m services.token --email ada@example.com)" ...
"""

from __future__ import annotations

import argparse
import sys

from shared.auth.tokens import TokenIssuer, ensure_signing_key
from shared.grpc.auth import signing_key_path
from shared.settings import AuthSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.token", description=__doc__.splitlines()[0])
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--email", help="a person: the token names them; their roles come from account teams")
    who.add_argument(
        "--operator", action="store_true", help="vendor support staff (operator actions, all reads)"
    )
    who.add_argument(
        "--service", metavar="NAME", help="a Tenure service (internal RPCs); for tests and tooling"
    )
    parser.add_argument(
        "--partner",
        metavar="ORG",
        default="",
        help="with --email: a partner's staff member acting for partner ORG (claim tenure_partner, rules §9)",
    )
    parser.add_argument("--name", default="operator", help="the operator's name or e-mail (with --operator)")
    parser.add_argument("--ttl", type=float, default=3600.0, help="lifetime in seconds (default 3600)")
    args = parser.parse_args(argv)
    if args.partner and not args.email:
        parser.error("--partner goes with --email (a partner's staff member)")

    settings = AuthSettings()
    path = signing_key_path(settings)
    if not settings.signing_key_file:
        ensure_signing_key(path)
    elif not path.exists():
        print(f"no signing key at {path}", file=sys.stderr)
        return 2
    issuer = TokenIssuer.from_file(path, settings.issuer, settings.audience)
    if args.email:
        if "@" not in args.email:
            parser.error("--email needs an e-mail address")
        token = issuer.person(args.email, ttl_seconds=args.ttl, partner=args.partner)
    elif args.operator:
        token = issuer.operator(args.name, ttl_seconds=args.ttl)
    else:
        token = issuer.service(args.service, ttl_seconds=args.ttl)
    print(token)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
