"""Every Terraform plan, .tf file and CloudFormation template in the shared
corpus (``terraform/``, MANIFEST.tsv) loads — its dialect sniffed — or
gives a located error; audit and (for plans) ``diff plan.json`` run on each
without crashing or abandoning an analysis."""

from pathlib import Path

import pytest

from ruleanalyzer.audit import run_audit
from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.loader import load
from ruleanalyzer.plan_diff import diff_plan

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "terraform"
DIALECTS = {"plan-json": "terraform-plan", "hcl": "terraform", "cloudformation": "cloudformation"}
#: Files the tools they come from reject too (linters' negative test inputs).
INVALID = {
    # Go templates of terraform-validator, not HCL ({{if .Provider.credentials}}).
    "GoogleCloudPlatform__terraform-validator__testdata__templates__example_compute_firewall.tf",
    "GoogleCloudPlatform__terraform-validator__testdata__templates__full_compute_firewall.tf",
    # Rules without their required protocol / with blocks a rule resource has not.
    "aquasecurity__tfsec___examples__withVars__main.tf",
    "open-policy-agent__conftest__examples__hcl2__terraform.tf",
    "bridgecrewio__checkov__tests__terraform__checks__resource__aws__example_NetworkACLUnrestrictedIngress22__main.tf",
    # from_port 443 > to_port 22: AWS refuses the range (InvalidParameterValue).
    "terraform-compliance__cli__tests__functional__test_issue_400__main.tf",
    "terraform-compliance__cli__tests__functional__test_issue_400__plan.out.json",
}


def corpus_files():
    if not CORPUS.is_dir():
        return []
    return [(folder, p) for folder in DIALECTS for p in sorted((CORPUS / folder).iterdir())
            if p.is_file() and p.suffix in (".json", ".tf", ".yaml", ".yml", ".tfvars")]


@pytest.mark.corpus
@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not present")
@pytest.mark.parametrize("folder, path", corpus_files(), ids=lambda v: v.name if isinstance(v, Path) else v)
def test_corpus_file_loads_or_gives_a_located_error(folder, path):
    if path.name in INVALID:
        with pytest.raises(RuleAnalyzerError) as err:
            load(path)
        assert err.value.location.file == str(path) and (err.value.location.line or err.value.location.path)
        return
    ruleset = load(path)
    assert ruleset.meta["dialect"] == DIALECTS[folder]
    for rule in ruleset.rules():
        assert rule.location.file == str(path)
        if not rule.implicit and rule.origin is not None:
            assert rule.origin.tool in ("terraform", "cloudformation")
    result = run_audit([ruleset])
    assert not [f for f in result.findings if f.code == "RA003"], [f.message for f in result.findings]
    if folder == "plan-json":
        for report in diff_plan(path, findings=False, connections=False):
            assert not report.inconsistencies
