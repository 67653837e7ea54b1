"""The playground page in a real browser: headless Chromium driven by Selenium, against the real
`scratchgpt serve` started as a subprocess (serving.ProcessServer) over a tiny GPT trained for this module.

Skipped where Selenium, Chromium or chromedriver is missing, unless SCRATCHGPT_REQUIRE_BROWSER=1
(as in CI), where that is a failure. Nothing is downloaded: the driver's path is given, so Selenium
Manager never runs. Each test saves screenshots under $SCRATCHGPT_ARTIFACTS/browser/ (default
test-artifacts/browser/). The page marks its states for the tests (data-state on #output,
#attention-maps and #training-panel), so no test sleeps to wait for it.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from serving import ProcessServer

from scratchgpt.cli import main
from scratchgpt.rundir import run_lock

LONG_GENERATION = 20_000  # tokens: long enough that Stop always lands in the middle of it


def _browser():
    """(chromium, chromedriver) paths; skip the module where one is missing (fail if required)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    chromedriver = shutil.which("chromedriver")
    try:
        import selenium  # noqa: F401

        missing = [name for name, path in (("chromium", chromium), ("chromedriver", chromedriver)) if not path]
    except ImportError:
        missing = ["selenium"]
    if missing:
        why = f"browser tests need {' and '.join(missing)}"
        if os.environ.get("SCRATCHGPT_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{why} (SCRATCHGPT_REQUIRE_BROWSER=1)")
        pytest.skip(why)
    return chromium, chromedriver


@pytest.fixture(scope="module")
def browser():
    """(chromium, chromedriver): asked for first, so a missing browser skips before any training."""
    return _browser()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, shakespeare):
    """A tiny GPT (2 layers, 2 heads, 60 steps), trained in-process: a few seconds."""
    root = tmp_path_factory.mktemp("browser")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SCRATCHGPT_CACHE", str(root / "cache"))
        assert (
            main(["train", "--preset", "tiny", "--data", str(shakespeare), "--out", str(root / "run"), "--quiet"]) == 0
        )
    return root / "run"


def unfinished_copy(run_dir, name):
    """A copy of the run as it was before its end: its metrics.jsonl without the final record."""
    copy = run_dir.parent / name
    shutil.copytree(run_dir, copy)
    records = (copy / "metrics.jsonl").read_text().splitlines()
    (copy / "metrics.jsonl").write_text("".join(line + "\n" for line in records if '"final"' not in line))
    return copy


@pytest.fixture(scope="module")
def live_run(run_dir):
    """A run still training (while a test holds its lock)."""
    return unfinished_copy(run_dir, "live")


@pytest.fixture(scope="module")
def stopped_run(run_dir):
    """A run stopped with Ctrl-C: no final record, and no process holds its lock."""
    return unfinished_copy(run_dir, "stopped")


@pytest.fixture(scope="module")
def family_runs(run_dir):
    """A tiny masked-LM encoder and a tiny encoder-decoder that swaps two words."""
    root = run_dir.parent
    words = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
    (root / "pairs.tsv").write_text("".join(f"{a} {b}\t{b} {a}\n" for a in words for b in words))
    assert main(["train", "--preset", "tiny-encoder", "--out", str(root / "mlm"), "--quiet"]) == 0
    assert (
        main(
            [
                "train",
                "--preset",
                "tiny-seq2seq",
                "--task",
                "pairs",
                "--data",
                str(root / "pairs.tsv"),
                "--out",
                str(root / "swap"),
                "--quiet",
            ]
        )
        == 0
    )
    return {"mlm": root / "mlm", "swap": root / "swap"}


@pytest.fixture(scope="module")
def served(run_dir, live_run, stopped_run, family_runs):
    """The served run directories; the encoder-decoder, trained last, is the newest."""
    return [run_dir, live_run, stopped_run, family_runs["mlm"], family_runs["swap"]]


@pytest.fixture(scope="module")
def server(browser, served):
    server = ProcessServer(*[arg for run in served for arg in ("--run", run)], "--max-new-tokens", LONG_GENERATION)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def driver(browser):
    chromium, chromedriver = browser
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    yield driver
    driver.quit()


@pytest.fixture
def page(driver, server, run_dir):
    """The playground, freshly loaded with the run picked through the URL hash."""
    driver.get("about:blank")  # else the same URL again would only move to its #fragment, not reload
    driver.get(f"{server.url}/#run={run_dir.name}")
    wait_for(driver, lambda d: data_state(d, "training-panel") == "drawn", "the page to load its run")
    return driver


# ---------------------------------------------------------------------------------------------
# Helpers


def wait_for(driver, condition, what, timeout=30):
    """Wait for `condition(driver)` (a bound on waiting, not a speed test)."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition, f"waited {timeout} s for {what}")


def data_state(driver, element_id):
    return driver.execute_script("return document.getElementById(arguments[0]).dataset.state", element_id)


def text_of(driver, element_id):
    """textContent: the text exactly, newlines and spaces included (WebDriver's .text folds them)."""
    return driver.execute_script("return document.getElementById(arguments[0]).textContent", element_id)


def set_values(driver, **values):
    """Set inputs by id (top_k sets #top-k) as a user would, firing their input events."""
    for name, value in values.items():
        driver.execute_script(
            "const input = document.getElementById(arguments[0]); input.value = arguments[1];"
            "input.dispatchEvent(new Event('input', {bubbles: true}));",
            name.replace("_", "-"),
            str(value),
        )


def click(driver, element_id):
    driver.find_element("id", element_id).click()


def screenshot(driver, name):
    folder = Path(os.environ.get("SCRATCHGPT_ARTIFACTS", "test-artifacts")) / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(folder / f"{name}.png"))


def error_line(driver):
    return driver.execute_script("const e = document.getElementById('error'); return e.hidden ? '' : e.textContent")


def background(element):
    return element.value_of_css_property("background-color")


TRANSPARENT = "rgba(0, 0, 0, 0)"


# ---------------------------------------------------------------------------------------------
# The tests


def test_a_seeded_generation_in_the_page_is_the_sample_commands_text(page, server, run_dir):
    settings = {"prompt": "ROMEO:", "temperature": 0.8, "top_k": 20, "max_new_tokens": 120, "seed": 7}
    command = subprocess.Popen(  # the same settings through the command, meanwhile
        [
            sys.executable,
            "-m",
            "scratchgpt",
            "sample",
            "--run",
            str(run_dir),
            "--device",
            "cpu",
            "--cache",
            "window",
            *[f"--{k.replace('_', '-')}={v}" for k, v in settings.items()],
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    set_values(page, **settings, cache="window")
    assert text_of(page, "temperature-value") == "0.8"  # the slider's number follows it
    click(page, "generate")
    wait_for(page, lambda d: data_state(d, "output") in ("done", "error"), "the generation to end")
    screenshot(page, "generate")
    assert data_state(page, "output") == "done", f"{error_line(page)}\n{server.tail()}"
    out, err = command.communicate(timeout=120)
    assert command.returncode == 0, err
    shown = text_of(page, "output")
    assert shown + "\n" == out  # the command ends its text with a newline
    assert page.execute_script("return document.querySelector('#output .prompt').textContent") == "ROMEO:"
    assert text_of(page, "token-count") == "120 tokens"
    assert re.fullmatch(r"[\d,]+ tokens/s \(\d+\.\d\d s\)", text_of(page, "speed")), text_of(page, "speed")
    assert error_line(page) == ""


def test_the_attention_explorer_draws_every_layer_and_head(page, run_dir):
    from selenium.webdriver import ActionChains

    model = json.loads((run_dir / "config.json").read_text())["model"]
    set_values(page, attention_text="ROMEO:\nBut soft")
    click(page, "attention-run")
    wait_for(page, lambda d: data_state(d, "attention-maps") == "drawn", "the attention maps")
    maps = page.find_elements("css selector", "#attention-maps canvas.heatmap")
    assert len(maps) == model["n_layer"] * model["n_head"]
    pixels = page.execute_script(
        """
        const canvas = arguments[0];
        const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        const colours = new Set();
        let opaque = 0;
        for (let i = 0; i < data.length; i += 4) {
            colours.add(data.slice(i, i + 3).join());
            if (data[i + 3] === 255) opaque += 1;
        }
        return {width: canvas.width, height: canvas.height, opaque, colours: colours.size};""",
        maps[0],
    )
    assert (pixels["width"], pixels["height"]) == (15, 15)  # one pixel per (query, key): 15 characters
    assert pixels["opaque"] == 15 * 15 and pixels["colours"] > 2  # drawn, and not one flat colour

    # The strip shows every character, spaces and newlines made visible.
    tokens = page.find_elements("css selector", "#attention-tokens .token")
    assert [t.text for t in tokens] == list("ROMEO:↵But␣soft")
    ActionChains(page).move_to_element(tokens[3]).perform()  # the query "E"
    wait_for(page, lambda d: "query" in tokens[3].get_attribute("class"), "the hovered token to be the query")
    screenshot(page, "attention")
    shaded = [background(t) != TRANSPARENT for t in tokens]
    assert any(shaded[:4]), "the query reads none of the keys before it"
    assert not any(shaded[4:]), "a GPT's query must not read the keys after it (causal mask)"
    assert "query 3 “E”" in text_of(page, "attention-selected")

    # Clicking another map picks it: its layer and head, enlarged.
    last = maps[-1]
    last.click()
    assert "selected" in last.get_attribute("class") and "selected" not in maps[0].get_attribute("class")
    layer, head = model["n_layer"] - 1, model["n_head"] - 1
    assert text_of(page, "attention-selected").startswith(f"layer {layer}, head {head}")
    assert page.execute_script("return document.getElementById('attention-zoom').width") > 15 * 6


def test_stop_ends_the_stream_and_the_servers_job(page, server):
    set_values(page, prompt="ROMEO:", max_new_tokens=LONG_GENERATION, seed="")
    click(page, "generate")
    wait_for(page, lambda d: len(text_of(d, "output")) > len("ROMEO:") + 20, "the first tokens")
    click(page, "stop")
    wait_for(page, lambda d: data_state(d, "output") == "stopped", "the page to show it stopped")
    shown = len(text_of(page, "output"))
    assert shown < len("ROMEO:") + LONG_GENERATION
    assert text_of(page, "speed") == "stopped"
    time.sleep(0.5)  # had the stream gone on, tokens would have arrived meanwhile
    assert len(text_of(page, "output")) == shown
    screenshot(page, "stopped")
    deadline = time.monotonic() + 10
    while server.health()["running"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.health()["running"] == 0, f"the server still runs the stopped job\n{server.tail()}"
    assert page.find_element("id", "generate").is_enabled()
    assert not page.find_element("id", "stop").is_enabled()


def test_the_training_panel_draws_the_curves_and_the_settings(page, run_dir):
    assert page.find_element("id", "run").get_attribute("value") == run_dir.name  # from the URL hash
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    segments = page.execute_script(
        "return [...document.querySelectorAll('#loss-chart path.series')].map(p => p.getAttribute('d'))"
    )
    assert len(train) >= 2 and segments[0].count("L") == len(train) - 1  # the batch loss, a point per record
    dots = page.find_elements("css selector", "#loss-chart circle.dot")
    assert len(dots) == 2 * len(evals) + 1  # train and val at each eval, and the final val loss
    assert page.find_elements("css selector", "#lr-chart path.series")
    model = json.loads((run_dir / "config.json").read_text())["model"]
    value = page.find_element("xpath", "//div[@id='settings']//dt[text()='n_layer']/following-sibling::dd")
    assert value.text == str(model["n_layer"])
    assert text_of(page, "benchmark").startswith(f"{train[-1]['step']} steps")
    assert text_of(page, "training-state") == "Training finished."
    page.execute_script("document.getElementById('training-panel').scrollIntoView()")
    screenshot(page, "training")


def test_a_run_still_training_is_redrawn_as_its_metrics_grow(driver, server, live_run):
    metrics = live_run / "metrics.jsonl"
    last = json.loads(metrics.read_text().splitlines()[-1])
    with run_lock(live_run):  # held as the training loop holds it
        driver.get("about:blank")
        driver.get(f"{server.url}/#run={live_run.name}")
        wait_for(driver, lambda d: data_state(d, "training-panel") == "drawn", "the live run's curves")
        assert text_of(driver, "training-state").startswith("Training: step")

        def points(d):
            return d.execute_script(
                "return document.querySelector('#loss-chart path.series').getAttribute('d').split('L').length"
            )

        before = points(driver)
        with metrics.open("a") as f:  # the trainer logs another interval
            f.write(
                json.dumps(
                    {
                        "kind": "train",
                        "step": last["step"] + 5,
                        "loss": 2.5,
                        "lr": 1e-4,
                        "tokens_per_s": 1000.0,
                        "train_seconds": 9.0,
                    }
                )
                + "\n"
            )
        wait_for(driver, lambda d: points(d) == before + 1, "the page to draw the new record")
        with metrics.open("a") as f:  # and finishes, then exits
            f.write(json.dumps({"kind": "final", "step": last["step"] + 5, "val_loss": 2.6}) + "\n")
    wait_for(driver, lambda d: text_of(d, "training-state") == "Training finished.", "the page to see the end")
    screenshot(driver, "live")


def test_a_stopped_run_says_so_and_how_to_resume_it(driver, server, stopped_run):
    open_run(driver, server, stopped_run.name)
    records = [json.loads(line) for line in (stopped_run / "metrics.jsonl").read_text().splitlines()]
    max_iters = json.loads((stopped_run / "config.json").read_text())["train"]["max_iters"]
    assert text_of(driver, "training-state") == (
        f"Stopped at step {records[-1]['step']:,} of {max_iters:,} "
        f"(resume with: scratchgpt train --resume --out {stopped_run})"
    )  # and no "refreshing every 3 s"
    screenshot(driver, "stopped-run")


def test_the_page_opens_on_the_newest_run(driver, server, served):
    driver.get("about:blank")
    driver.get(server.url)
    wait_for(driver, lambda d: data_state(d, "training-panel") == "drawn", "the page to load a run")
    newest = max(served, key=lambda run: (run / "model.safetensors").stat().st_mtime)
    assert driver.find_element("id", "run").get_attribute("value") == newest.name
    listed = driver.execute_script("return [...document.querySelectorAll('#run option')].map(o => o.value)")
    assert listed[0] == newest.name  # the picker lists the newest first


def open_run(driver, server, name):
    driver.get("about:blank")
    driver.get(f"{server.url}/#run={name}")
    wait_for(driver, lambda d: data_state(d, "training-panel") == "drawn", f"the page to load {name}")


def shown_panels(driver):
    return driver.execute_script(
        "return [...document.querySelectorAll('[data-ability]')].filter(p => !p.hidden).map(p => p.dataset.ability)"
    )


def test_an_encoder_run_fills_masks_and_shows_its_attention(driver, server, family_runs):
    from scratchgpt.inference.predict import fill
    from scratchgpt.rundir import load_model

    open_run(driver, server, "mlm")
    assert sorted(shown_panels(driver)) == ["attention", "fill"]  # no generate for an encoder
    set_values(driver, fill_text="To b[MASK] or not", fill_top_k=3)
    click(driver, "fill-run")
    wait_for(driver, lambda d: d.find_elements("css selector", "#fill-results .result"), "the guesses")
    model, tokenizer, config, _ = load_model(family_runs["mlm"])
    (expected,) = fill(model, tokenizer, "To b[MASK] or not", top_k=3)
    rows = driver.find_elements("css selector", "#fill-results .result tr")
    assert [r.find_element("css selector", ".label").text for r in rows] == [t.replace(" ", "␣") for t, _ in expected]
    click(driver, "attention-run")
    wait_for(driver, lambda d: data_state(d, "attention-maps") == "drawn", "the encoder's maps")
    assert len(driver.find_elements("css selector", "canvas.heatmap")) == config.n_layer * config.n_head
    screenshot(driver, "encoder")


def test_a_translation_run_translates_and_shows_its_three_attentions(driver, server, family_runs):
    from scratchgpt.inference.translate import translate
    from scratchgpt.rundir import load_model

    open_run(driver, server, "swap")
    assert sorted(shown_panels(driver)) == ["attention", "translate"]
    model, tokenizer, config, _ = load_model(family_runs["swap"])
    set_values(driver, translate_texts="one two\nten six", beam=2)
    click(driver, "translate-run")
    wait_for(driver, lambda d: d.find_elements("css selector", "#translate-results tr"), "the translations")
    shown = [td.text for td in driver.find_elements("css selector", "#translate-results td.answer")]
    assert shown == translate(model, tokenizer, ["one two", "ten six"], beam=2)
    set_values(driver, attention_text="one two")
    click(driver, "attention-run")
    wait_for(driver, lambda d: data_state(d, "attention-maps") == "drawn", "the three kinds of maps")
    panels = driver.execute_script("return [...document.querySelectorAll('canvas.heatmap')].map(c => c.dataset.panel)")
    per_panel = config.n_layer * config.n_head
    assert panels == ["0"] * per_panel + ["1"] * per_panel + ["2"] * per_panel  # encoder, decoder, cross
    translation = translate(model, tokenizer, ["one two"])[0]
    assert text_of(driver, "attention-translation") == f"Translation: {translation}"
    screenshot(driver, "translation")


def test_a_prompt_outside_the_vocabulary_shows_the_servers_error(page, server, run_dir):
    set_values(page, prompt="Café")
    click(page, "generate")
    wait_for(page, lambda d: data_state(d, "output") == "error", "the refusal")
    screenshot(page, "error")
    request = urllib.request.Request(
        server.url + "/api/generate",
        method="POST",
        data=json.dumps({"run": run_dir.name, "prompt": "Café"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 422
    assert error_line(page) == json.load(refused.value)["error"]
    assert "'é'" in error_line(page)
    assert text_of(page, "output") == ""
    assert page.find_element("id", "error").is_displayed()


def test_the_server_stops_gracefully_on_sigterm(server):
    assert server.stop() == 0, server.tail()
