"""Identity and permissions, shared by the four services.

- `principal`: who is calling (a person, a Tenure service or an operator), carried per call.
- `tokens`: signing keys, minting and verifying the JWTs every call carries.
- `policy`: the pure permission rules: a service's table of RPC → who may call it, and the decision.
- `membership`: each service's projection of account teams (who holds which role on which account).
"""
