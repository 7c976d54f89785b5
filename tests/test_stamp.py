"""The pass stamp (lora_verify.stamp): it stands for one tree's content and one environment, nothing else."""

from lora_verify import stamp

ENV = {"max_examples": 100, "derandomize": True, "interpreter": True, "python": "3", "versions": ["a"]}


def test_a_stamp_matches_its_tree_and_environment_only(tmp_path):
    root, copy = tmp_path / "root", tmp_path / "copy"
    for tree in (root, copy):
        (tree / "impl").mkdir(parents=True)
        (tree / "impl" / "k.py").write_text("mask = offs < n\n")
        (tree / ".tox").mkdir()  # ignored, as the mutation runner's copies leave it out
        (tree / ".tox" / "junk").write_text(str(tree))
    stamp.write(root, ENV, 12.5)
    assert stamp.matching(root, copy, ENV)["seconds"] == 12.5
    assert stamp.matching(root, copy, {**ENV, "max_examples": 20}) is None
    (copy / "impl" / "k.py").write_text("mask = offs <= n\n")
    assert stamp.matching(root, copy, ENV) is None
    (copy / "impl" / "k.py").write_text("mask = offs < n\n")
    (copy / "impl" / "new.py").write_text("")
    assert stamp.matching(root, copy, ENV) is None
    assert stamp.matching(tmp_path / "nowhere", copy, ENV) is None
