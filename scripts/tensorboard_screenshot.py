"""TensorBoard as a user opens it on a week of work: `python scripts/tensorboard_screenshot.py`.

Trains the runs of the README's first commands into a temporary log folder (the quick start and
the "Then" list: CNN, regression and text runs, a sweep, and a run resumed to more epochs;
`--short` limits their batches), or takes `--logdir`, starts `tensorboard --logdir` on it, opens
each tab in a headless Chromium driven by Selenium (it waits for the charts to be drawn, which
`chromium --screenshot` does not) and writes docs/images/tensorboard_<tab>.png. `--check`
asserts, from the pages themselves, what docs/tensorboard.md promises of such a folder: one
run-list entry per run, the five HParams metrics every run has ticked, and a Parallel
Coordinates view that draws every run (it exits 1 and says which fails).

Needs a browser and its driver, which the project does not depend on:
    apt-get install -y chromium chromium-driver      (Debian; or any Chrome + chromedriver)
    pip install -e ".[docs]"                          (selenium)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from trainkit.tensorboard_views import SUMMARY, time_series_url

ROOT = Path(__file__).resolve().parents[1]
# tab -> (URL after the server's address, window width, height); smoothing 0: a 5-epoch run has
# few points, and TensorBoard's default smoothing (0.6) lags them (see the README)
RUN_NAMES = "runs-data-table tb-data-table-content-cell.table-column-run"  # the run list
PINNED = time_series_url(0).partition("/?")[2].partition("#")[0]  # the pinned cards' query
TABS = {
    "timeseries": (f"/?smoothing=0&{PINNED}#timeseries", 1600, 3000),
    "custom_scalars": ("/#custom_scalars&_smoothingWeight=0", 1600, 1000),
    "hparams": ("/#hparams", 2400, 900),
    "images": ("/#images", 1200, 900),
}

UNCHECK_IGNORE_OUTLIERS = """
const seen = [];
(function walk(root) {
  for (const el of root.querySelectorAll('*')) {
    const box = el.tagName === 'PAPER-CHECKBOX';
    if (box && el.textContent.includes('Ignore outliers')) seen.push(el);
    if (el.shadowRoot) walk(el.shadowRoot);
  }
})(document);
for (const box of seen) if (box.checked) box.click();
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# the README's quick start and "Then" runs (debug=fast_dev_run logs nothing), and a resume
RUNS = [
    ["model=cnn", "trainer.max_epochs=5"],
    [],
    ["model=regression"],
    ["model=regression", "data=diabetes", "model.hidden=[64,64]"],
    ["model=text"],
    ["experiment=regression_linear"],
    ["-m", "model=cnn", "data.batch_size=32,64,128", "trainer.max_epochs=3,5"],
    ["model=cnn", "trainer.max_epochs=2"],
]
SHORT = ["trainer.limit_train_batches=4", "trainer.limit_val_batches=2",
         "trainer.limit_test_batches=2"]  # fmt: skip


def train_runs(logs: Path, short: bool) -> None:
    """The README's runs into `logs`, then the last one resumed to 4 epochs."""
    env = {**os.environ, "TRAINKIT_LOG_DIR": str(logs)}
    quiet = ["trainer.enable_progress_bar=false", *(SHORT if short else [])]
    for args in RUNS:
        subprocess.run([sys.executable, "train.py", *args, *quiet], cwd=ROOT, env=env,
                       check=True, capture_output=True)  # fmt: skip
    newest = max((logs / "train" / "runs").iterdir(), key=lambda p: p.stat().st_mtime)
    resume = ["model=cnn", "trainer.max_epochs=4", f"ckpt_path={newest}", *quiet]
    subprocess.run([sys.executable, "train.py", *resume], cwd=ROOT, env=env, check=True,
                   capture_output=True)  # fmt: skip


def expected_runs(logs: Path) -> set[str]:
    """The TensorBoard runs a log folder should show: one per run, a resumed run counted once
    (it writes into its run's folder), as TensorBoard names them."""
    folders = set()
    for metrics in logs.rglob("metrics.json"):
        recorded = json.loads(metrics.read_text()).get("tensorboard")
        if recorded:
            folders.add(Path(recorded).resolve().relative_to(logs.resolve()).as_posix())
    return folders


def browser(width: int, height: int, profile: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    if shutil.which("chromium"):
        options.binary_location = shutil.which("chromium")
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--disable-quic", f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = shutil.which("chromedriver")
    return webdriver.Chrome(service=Service(driver) if driver else None, options=options)


def shoot(base: str, tab: str, out: Path, wait: float) -> None:
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By

    path, width, height = TABS[tab]
    with tempfile.TemporaryDirectory() as profile:
        driver = browser(width, height, profile)
        try:
            driver.get(base + path)
            time.sleep(wait)
            if tab == "timeseries":
                # all of a short run's points in the charts: "Ignore outliers" (on by default)
                # would cut the first epochs off; then every card group open (TensorBoard opens
                # the first two by name, epoch and test), the settings pane closed
                xpath = "//*[contains(text(), 'Ignore outliers')]/ancestor::mat-checkbox//input"
                collapsed = "button.group-toolbar:has(mat-icon[svgicon='expand_more_24px'])"
                steps = [(By.XPATH, xpath)] + [(By.CSS_SELECTOR, collapsed)] * 8
                steps += [(By.CSS_SELECTOR, "button[aria-label='Close side pane']")]
                for how, what in steps:
                    for element in driver.find_elements(how, what)[:1]:  # queried again each time
                        with contextlib.suppress(WebDriverException):
                            driver.execute_script("arguments[0].click();", element)
                            time.sleep(1)
                time.sleep(wait / 2)
            if tab == "custom_scalars":  # the same checkbox, in the Polymer dashboard's shadow DOM
                driver.execute_script(UNCHECK_IGNORE_OUTLIERS)
                time.sleep(wait / 2)
            driver.save_screenshot(str(out))
        finally:
            driver.quit()
    print(f"wrote {out}")


# JavaScript that reads a page through the shadow DOMs of TensorBoard's Polymer dashboards
DEEP = """
function* walk(root) {
  for (const el of root.querySelectorAll('*')) {
    yield el;
    if (el.shadowRoot) yield* walk(el.shadowRoot);
  }
}
window.deep = (pred) => {
  const out = [];
  for (const el of walk(document)) if (pred(el)) out.push(el);
  return out;
};
"""


def check_pages(base: str, expected: set[str], wait: float) -> list[str]:
    """What docs/tensorboard.md promises of a log folder of every kind of run, read from the
    pages as a user sees them; the failures, in words."""
    from selenium.webdriver.common.by import By

    failures = []
    with tempfile.TemporaryDirectory() as profile:
        driver = browser(1600, 1200, profile)
        try:
            driver.get(base + TABS["timeseries"][0])
            time.sleep(wait)
            cells = driver.find_elements(By.CSS_SELECTOR, RUN_NAMES)
            names = [" ".join(e.get_attribute("textContent").split()) for e in cells]
            names = [n for n in names if n]
            if sorted(names) != sorted(expected):
                failures.append(f"the run list shows {len(names)} runs {names}, not the "
                                f"{len(expected)} of the folder {sorted(expected)}")  # fmt: skip
            pinned = driver.find_elements(By.CSS_SELECTOR, "metrics-pinned-view card-view")
            if len(pinned) < 3:
                failures.append(f"Time Series pins {len(pinned)} cards, not the losses and "
                                "headline metrics")  # fmt: skip
            driver.get(base + "/#hparams")
            time.sleep(wait)
            driver.execute_script(DEEP)
            # the metric columns and their ticks, as the dashboard's query pane holds them
            ticked = driver.execute_script(
                "return deep(e => e.tagName === 'TF-HPARAMS-QUERY-PANE')[0]._metrics"
                ".filter(m => m.displayed).map(m => m.info.name.tag)"
            )
            if len(ticked) != 5 or not all(t.startswith(f"{SUMMARY}/") for t in ticked):
                failures.append(f"HParams ticks the metrics {ticked}, not the five {SUMMARY}/")
            driver.execute_script(
                "deep(e => e.tagName === 'PAPER-TAB' && e.textContent.includes('PARALLEL'))[0]"
                ".click()"
            )
            time.sleep(wait / 2)
            drawn = driver.execute_script(
                "return deep(e => e.classList && e.classList.contains('foreground'))"
                ".reduce((n, g) => n + g.querySelectorAll('path').length, 0)"
            )
            if drawn < len(expected):
                failures.append(f"Parallel Coordinates draws {drawn} runs of {len(expected)}")
        finally:
            driver.quit()
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", type=Path, help="runs to show (default: train the README's)")
    parser.add_argument("--short", action="store_true", help="train the runs on a few batches")
    parser.add_argument("--check", action="store_true", help="assert what the pages show")
    parser.add_argument("--tabs", nargs="+", default=list(TABS), choices=list(TABS))
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--wait", type=float, default=10.0, help="seconds for a tab to draw")
    args = parser.parse_args()
    try:
        import selenium  # noqa: F401
    except ImportError:
        print("error: selenium is missing: pip install -e '.[docs]'", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        logdir = args.logdir
        if logdir is None:
            logdir = Path(tmp) / "logs"
            train_runs(logdir, args.short)
        port = free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tensorboard.main",
                "--logdir",
                str(logdir),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(120):  # until the server answers
                try:
                    urllib.request.urlopen(base + "/data/runs", timeout=5).read()
                    break
                except OSError:
                    time.sleep(0.5)
            args.out.mkdir(parents=True, exist_ok=True)
            for tab in args.tabs:
                shoot(base, tab, args.out / f"tensorboard_{tab}.png", args.wait)
            failures = check_pages(base, expected_runs(logdir), args.wait) if args.check else []
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    for failure in failures:
        print(f"check failed: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
