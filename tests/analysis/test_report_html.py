"""The HTML report is a real page: it parses strictly, its tables carry the JSON's rows, no Markdown is left, the
verdict is marked, and it needs nothing from the network."""
import json

import html5lib
import pytest

from support import run_cli

NS = "{http://www.w3.org/1999/xhtml}"


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from spikformer_deploy.cli import main

    out = tmp_path_factory.mktemp("report") / "report.html"
    assert main(["report", "--format", "html", "-o", str(out), "--samples", "32"]) == 0
    text = out.read_text()
    data = json.loads(out.with_suffix(".json").read_text())
    return text, data, html5lib.HTMLParser(strict=True).parse(text)  # strict: any parse error raises


def rows(doc, table_id):
    table = next(t for t in doc.iter(f"{NS}table") if t.get("id") == table_id)
    return [["".join(td.itertext()).strip() for td in tr if td.tag in (f"{NS}td", f"{NS}th")]
            for tr in table.iter(f"{NS}tr") if tr.find(f"{NS}td") is not None]


def test_tables_carry_the_json_rows(page):
    _, data, doc = page
    assert [r[0] for r in rows(doc, "constraints")] == [c["name"] for c in data["checks"]]
    assert [r[1] for r in rows(doc, "constraints")] == [c["status"] for c in data["checks"]]
    assert [(r[0], r[1]) for r in rows(doc, "energy")] == [(e["profile"], e["convention"]) for e in data["energy"]]
    assert [r[0] for r in rows(doc, "mapping")] == [g["name"] for g in data["groups"]]
    assert [int(r[4].replace(",", "")) for r in rows(doc, "mapping")] == [g["cores"] for g in data["groups"]]
    limits = rows(doc, "limits")
    assert [r[0] for r in limits] == list(data["limits"]) and [r[3] for r in limits] == [
        c["kind"] for c in data["limits"].values()]
    assert any("–" in r[2] for r in limits)  # calibrated constants show their range
    loihi2 = next(r for r in rows(doc, "energy") if r[0] == "loihi2")
    assert "–" in loihi2[3] and loihi2[6] == "calibrated"
    energy = next(e for e in data["energy"] if e["profile"] == "loihi2")
    assert loihi2[4].startswith(f"{energy['dynamic_J'] * 1e6:.3f} µJ (") and loihi2[5].startswith(
        f"{energy['static_J'] * 1e6:.3f} µJ (")  # dynamic and static side by side, with their ranges
    assert [r[0] for r in rows(doc, "placements")] == [p["placement"] for p in data["placements"]["rows"]] == [
        "embedded", "neurocores"]
    terms = {r[0].strip(): r[2] for r in rows(doc, "performance")}
    assert {"neurocores", "embedded", "barrier", "interchip"} <= set(terms) and "unvalidated" in terms["embedded"]


def test_a_page_not_markdown(page):
    text, data, doc = page
    body = "".join(next(doc.iter(f"{NS}body")).itertext())
    for marker in ("**", "| ---", "## ", "# Feasibility"):
        assert marker not in body, marker
    verdict = next(s for s in doc.iter(f"{NS}section") if s.get("id") == "verdict")
    assert verdict.get("class") == "verdict verdict-fits" and data["verdict"]["state"] == "fits"  # on neurocores
    assert len([i for i in doc.iter(f"{NS}img") if i.get("src").startswith("data:image/png;base64,")]) == 4
    # self-contained: no scripts, no external style sheets, images or fonts
    assert not list(doc.iter(f"{NS}script")) and not list(doc.iter(f"{NS}link"))
    assert "http://" not in text and "https://" not in text


def test_markdown_and_json_stay(capsys):
    rc, out, _ = run_cli(capsys, "report", "--format", "md", "--samples", "16")
    assert rc == 0 and out.startswith("# Feasibility: Spikformer 1-64 (cifar10)") and "| check | status |" in out
