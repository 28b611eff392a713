"""The GitHub Actions workflow (.github/workflows/ci.yml): it runs CI's entry point and publishes the book.

No runner executes it here, so this test reads it: valid YAML, keys GitHub knows, the commands and files
it names exist, and the book is deployed from main only, with the permissions Pages needs.
"""

from __future__ import annotations

import re
import stat
import subprocess
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
ON_MAIN_PUSH = "github.event_name == 'push' && github.ref == 'refs/heads/main'"
# The keys GitHub Actions accepts (https://docs.github.com/actions/reference/workflow-syntax-for-github-actions).
WORKFLOW_KEYS = {"name", "run-name", "on", "permissions", "env", "defaults", "concurrency", "jobs"}
JOB_KEYS = {
    "name",
    "needs",
    "if",
    "runs-on",
    "permissions",
    "environment",
    "concurrency",
    "outputs",
    "env",
    "defaults",
    "steps",
    "timeout-minutes",
    "strategy",
    "continue-on-error",
    "container",
    "services",
}
STEP_KEYS = {"id", "if", "name", "uses", "run", "shell", "with", "env", "continue-on-error", "timeout-minutes"}
STEP_KEYS |= {"working-directory"}


@pytest.fixture(scope="module")
def workflow():
    document = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    if True in document:  # YAML 1.1 reads the key `on` as the boolean True
        document["on"] = document.pop(True)
    return document


def test_keys_are_those_github_knows(workflow):
    assert set(workflow) <= WORKFLOW_KEYS
    for name, job in workflow["jobs"].items():
        assert set(job) <= JOB_KEYS, name
        assert job["steps"], name
        for step in job["steps"]:
            assert set(step) <= STEP_KEYS, step
            assert ("uses" in step) != ("run" in step), step  # exactly one of them
            if "uses" in step:
                assert re.fullmatch(r"[\w-]+/[\w-]+@v\d+", step["uses"]), step["uses"]  # a pinned major version


def test_it_runs_on_main_and_pull_requests(workflow):
    assert workflow["on"]["push"]["branches"] == ["main"]
    assert "pull_request" in workflow["on"]
    assert workflow["permissions"] == {"contents": "read"}  # least privilege, widened for deploy only


def test_the_test_job_runs_ci_entry_point(workflow):
    job = workflow["jobs"]["test"]
    runs = [step["run"] for step in job["steps"] if "run" in step]
    assert runs == ["bash .ci/run"]
    assert job["env"]["CI"] == "true"  # the browser tests then fail instead of skipping
    assert job["timeout-minutes"] >= 20  # CI's budget, with room for a slower runner
    ci_run = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^make test$", ci_run, flags=re.MULTILINE)  # the README's test command
    assert "make test" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert "apt-get install" in ci_run and job["container"].startswith("python:")  # Debian, as root


def test_ci_entry_point_is_executable_in_git():
    mode = subprocess.run(
        ["git", "ls-files", "--stage", ".ci/run"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.split()
    if not mode:
        pytest.skip("not a git checkout")
    assert int(mode[0], 8) & stat.S_IXUSR


def test_the_book_is_published_from_main_only(workflow):
    (upload,) = [s for s in workflow["jobs"]["test"]["steps"] if s.get("uses", "").startswith("actions/upload-pages")]
    assert upload["if"] == ON_MAIN_PUSH
    assert upload["with"]["path"] == "_build/html"
    assert "_build/html" in (ROOT / "Makefile").read_text(encoding="utf-8")  # where `make book` writes it
    deploy = workflow["jobs"]["deploy"]
    assert deploy["needs"] == "test" and deploy["if"] == ON_MAIN_PUSH
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"
    (step,) = deploy["steps"]
    assert step["uses"].startswith("actions/deploy-pages@") and step["id"] == "deployment"
    assert "steps.deployment.outputs.page_url" in deploy["environment"]["url"]
