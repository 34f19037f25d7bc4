"""Every cloud export in the shared corpus loads, or fails with a located
diagnostic when it is not a rule export; nothing crashes."""

from pathlib import Path

import pytest

from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.parsers import aws_nacl, aws_sg, azure, gcp, sniff
from ruleanalyzer.targets import select_target

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
FOLDERS = {"aws-sg": aws_sg, "aws-nacl": aws_nacl, "gcp-firewall": gcp, "azure-nsg": azure}
DIALECT = {"aws-sg": "aws-sg", "aws-nacl": "aws-nacl", "gcp-firewall": "gcp", "azure-nsg": "azure"}
#: Corpus files that are recorded API errors or not rule exports, by name.
NOT_EXPORTS = {
    "test_security_group_delete__ec2.DescribeSecurityGroups_2.json",  # 400 InvalidGroup.NotFound
    "test_security_group_stale__ec2.DescribeStaleSecurityGroups_1.json",  # stale refs only
    "firewall-delete__get-compute-v1-projects-cloud-custodian-global-firewalls-test_1.json",  # 404
}


def corpus_files():
    if not CORPUS.is_dir():
        return []
    return [(folder, path) for folder in FOLDERS
            for path in sorted((CORPUS / folder).rglob("*")) if path.is_file()]


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not present")
@pytest.mark.parametrize("folder, path", corpus_files(),
                         ids=lambda v: v.name if isinstance(v, Path) else v)
def test_corpus_file_loads_or_gives_located_diagnostic(folder, path):
    text = path.read_text(encoding="utf-8-sig")
    module = FOLDERS[folder]
    if path.name in NOT_EXPORTS:
        with pytest.raises(RuleAnalyzerError) as err:
            module.parse(text, str(path))
        assert err.value.location.file == str(path) and err.value.location.path
        return
    ruleset = module.parse(text, str(path))
    if ruleset.tables:
        assert sniff(text, str(path)) == DIALECT[folder]
    for table in ruleset.tables:
        assert table.dialect == DIALECT[folder]
        for chain in table.base_chains():
            assert chain.policy in ("accept", "drop") and chain.policy_text
    for rule in ruleset.rules():
        assert rule.location.file == str(path) and rule.text
    # Every table is a valid target on its own.
    for table in ruleset.tables:
        name = f"nsg:{table.name}" if table.dialect == "azure" else (
            f"network:{table.name}" if table.dialect == "gcp" else table.name)
        assert select_target(ruleset, name).tables
