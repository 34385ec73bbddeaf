"""Checks against real operations of the corpus: Petstore's POST /pet, Stripe's and Twilio's form bodies, Discord's
OpenAPI 3.1 schemas (type arrays). Every kind of problem, and a valid request for each. Skipped without the corpus."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest
import yaml

from core.checks.contract import RawSpec
from core.checks.operation import check_operation
from core.checks.pasted import read_pasted
from core.checks.schemas import Outcome, ProblemKind
from core.checks.secrets import shown_request

TWILIO_SID = "AC" + "0123456789abcdef" * 2
TWILIO_URL = f"https://api.twilio.com/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"


@cache
def _load(path: Path) -> RawSpec:
    text = path.read_text()
    document = json.loads(text) if path.suffix == ".json" else yaml.load(text, Loader=yaml.CSafeLoader)
    return RawSpec(document)


@pytest.fixture
def spec(specs_dir: Path, request: pytest.FixtureRequest) -> RawSpec:
    return _load(specs_dir / request.param)


def check(raw: RawSpec, text: str) -> Outcome:
    pasted = read_pasted(text)
    match = raw.match_path(pasted.path)
    operation = next(op for op in match.operations if op.method == pasted.method)
    return check_operation(raw, operation, pasted, prefix=match.stripped_prefix)


def kinds(outcome: Outcome) -> dict[str, ProblemKind]:
    return {p.where: p.kind for p in outcome.problems}


PETSTORE = "petstore_openapi3.yaml"
PET_URL = "https://petstore3.swagger.io/api/v3/pet"


@pytest.mark.parametrize("spec", [PETSTORE], indirect=True)
def test_petstore_post_pet(spec: RawSpec) -> None:
    auth = "-H 'Authorization: Bearer 0123456789abcdef'"
    valid = check(
        spec,
        f"""curl -X POST {PET_URL} {auth} -H 'Content-Type: application/json' \\
        -d '{{"name": "doggie", "photoUrls": ["https://x/1.png"], "status": "available", "category": {{"id": 1}}}}'""",
    )
    assert valid.problems == [], valid.problems

    wrong = check(
        spec,
        f"""curl -X POST {PET_URL} {auth} -H 'Content-Type: application/json' \\
        -d '{{"name": 7, "photoUrls": "x", "status": "lost", "category": {{"id": "one"}}}}'""",
    )
    assert kinds(wrong) == {
        "$.name": ProblemKind.WRONG_TYPE,
        "$.photoUrls": ProblemKind.WRONG_TYPE,
        "$.status": ProblemKind.NOT_IN_ENUM,
        "$.category.id": ProblemKind.WRONG_TYPE,
    }

    missing = check(spec, f"""curl -X POST {PET_URL} -d '{{"photoUrls": []}}'""")
    assert kinds(missing) == {
        "$.name": ProblemKind.MISSING_FIELD,
        "auth": ProblemKind.MISSING_AUTH,
        "header Content-Type": ProblemKind.CONTENT_TYPE,  # JSON sent with curl's default form type
    }
    assert "petstore_auth" in next(p.text for p in missing.problems if p.kind is ProblemKind.MISSING_AUTH)

    placeholder = check(spec, "curl https://petstore3.swagger.io/api/v3/pet/{petId} -H 'api_key: s3cr3t-key'")
    assert kinds(placeholder) == {"URL path": ProblemKind.PLACEHOLDER}
    bounds = check(spec, f"curl 'https://petstore3.swagger.io/api/v3/pet/findByStatus?status=lost' {auth}")
    assert kinds(bounds) == {"query parameter status": ProblemKind.NOT_IN_ENUM}
    response = read_pasted(
        'is this response valid for GET /pet/{petId} 200?\n{"id": "7", "name": "rex", "photoUrls": []}'
    )
    operation = spec.by_label("GET", "/pet/{petId}")
    assert operation is not None
    assert kinds(check_operation(spec, operation, response)) == {"$.id": ProblemKind.WRONG_TYPE}


STRIPE = "stripe_openapi3_2023-09.yaml"
STRIPE_KEY = "sk_test_" + "4eC39HqLyjWDarjtT1zdp7dc"


@pytest.mark.slow
@pytest.mark.parametrize("spec", [STRIPE], indirect=True)
def test_stripe_form_bodies(spec: RawSpec) -> None:
    base = f"curl https://api.stripe.com/v1/customers -u {STRIPE_KEY}:"
    valid = check(spec, base + " -d email=a@b.co -d 'metadata[order_id]=6735' -d balance=-100 -d 'expand[]=sources'")
    assert valid.problems == [], valid.problems

    wrong = check(
        spec,
        base + " -d balance=ten -d nonsense=1 -d 'tax_exempt=maybe' -d 'address[city]=Paris'"
        " -d 'cash_balance[settings][reconciliation_mode]=auto'",
    )
    assert kinds(wrong) == {
        "$.balance": ProblemKind.WRONG_TYPE,
        "$.nonsense": ProblemKind.UNKNOWN_FIELD,
        "$.tax_exempt": ProblemKind.NOT_IN_ENUM,
        "$.cash_balance.settings.reconciliation_mode": ProblemKind.NOT_IN_ENUM,
    }, wrong.problems
    too_long = check(spec, base + " -d description=" + "x" * 5001)
    assert kinds(too_long) == {"$.description": ProblemKind.BOUNDS}

    no_auth = check(spec, "curl https://api.stripe.com/v1/refunds -d charge=ch_1")
    assert kinds(no_auth) == {"auth": ProblemKind.MISSING_AUTH}
    refund = check(
        spec, f"curl https://api.stripe.com/v1/refunds -H 'Authorization: Bearer {STRIPE_KEY}' -d charge=ch_1"
    )
    assert refund.problems == []
    listed = check(
        spec, f"curl -G https://api.stripe.com/v1/customers -u {STRIPE_KEY}: -d 'created[gte]=soon' -d limit=5"
    )
    assert kinds(listed) == {"query parameter created.gte": ProblemKind.WRONG_TYPE}, listed.problems
    shown = shown_request(read_pasted(base + " -d email=a@b.co"))
    assert STRIPE_KEY not in shown and "[masked]" in shown


TWILIO = "twilio_api_v2010_openapi3.json"


@pytest.mark.parametrize("spec", [TWILIO], indirect=True)
def test_twilio_form_bodies(spec: RawSpec) -> None:
    auth = f"-u {TWILIO_SID}:authtoken123"
    valid = check(
        spec,
        f"curl -X POST {TWILIO_URL} --data-urlencode 'To=+15558675310' -d From=+15017122661 "
        f"-d 'Body=Hi there' -d MaxPrice=0.5 -d ProvideFeedback=true {auth}",
    )
    assert valid.problems == [], valid.problems

    wrong = check(
        spec,
        f"curl -X POST {TWILIO_URL} -d From=+15017122661 -d ProvideFeedback=maybe -d Attempt=x "
        f"-d ApplicationSid=AP123 -d ContentRetention=forever {auth}",
    )
    assert {(p.where, p.kind) for p in wrong.problems} == {
        ("$.To", ProblemKind.MISSING_FIELD),
        ("$.ProvideFeedback", ProblemKind.WRONG_TYPE),
        ("$.Attempt", ProblemKind.WRONG_TYPE),
        ("$.ApplicationSid", ProblemKind.BOUNDS),
        ("$.ApplicationSid", ProblemKind.PATTERN),
        ("$.ContentRetention", ProblemKind.NOT_IN_ENUM),
    }, wrong.problems

    bad_sid = check(
        spec, f"curl -X POST https://api.twilio.com/2010-04-01/Accounts/XY{'0' * 32}/Messages.json -d To=+1555 {auth}"
    )
    assert kinds(bad_sid) == {"path parameter AccountSid": ProblemKind.PATTERN}
    no_auth = check(spec, f"curl -X POST {TWILIO_URL} -d To=+1555 -H 'Authorization: Bearer abc'")
    assert kinds(no_auth) == {"header Authorization": ProblemKind.MISSING_AUTH}
    placeholder = check(
        spec, f"curl -X POST https://api.twilio.com/2010-04-01/Accounts/:AccountSid/Messages.json -d To=+1555 {auth}"
    )
    assert kinds(placeholder) == {"URL path": ProblemKind.PLACEHOLDER}


DISCORD = "discord_api_v10_openapi3.1.json"
COMMANDS = "https://discord.com/api/v10/applications/1234567890/commands"


@pytest.mark.parametrize("spec", [DISCORD], indirect=True)
def test_discord_3_1_type_arrays(spec: RawSpec) -> None:
    bot = "-H 'Authorization: Bot MTk4NjIyNDgzNDcxOTI1MjQ4.Cl2FMQ.ZnCjm1XVW7vRze4b7Cq4se7kKWs'"
    json_type = "-H 'Content-Type: application/json'"
    valid = check(
        spec,
        f"""curl -X POST {COMMANDS} {bot} {json_type} \\
        -d '{{"name": "ping", "description": null, "dm_permission": true, "default_member_permissions": null}}'""",
    )
    assert valid.problems == [], valid.problems

    wrong = check(
        spec,
        f"""curl -X POST {COMMANDS} {bot} {json_type} \\
        -d '{{"name": "", "description": 5, "dm_permission": "yes", "default_member_permissions": -1}}'""",
    )
    assert kinds(wrong) == {
        "$.name": ProblemKind.BOUNDS,
        "$.description": ProblemKind.WRONG_TYPE,
        "$.dm_permission": ProblemKind.WRONG_TYPE,
        "$.default_member_permissions": ProblemKind.BOUNDS,
    }, wrong.problems
    assert "string or null" in next(p.text for p in wrong.problems if p.where == "$.description")

    no_auth = check(spec, f"""curl -X POST {COMMANDS} {json_type} -d '{{"name": "ping"}}'""")
    assert kinds(no_auth) == {"auth": ProblemKind.MISSING_AUTH}
    wrong_type = check(spec, f"""curl -X POST {COMMANDS} {bot} -H 'Content-Type: text/plain' -d '{{"name": "ping"}}'""")
    assert kinds(wrong_type) == {"header Content-Type": ProblemKind.CONTENT_TYPE}
