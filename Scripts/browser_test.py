"""The dashboard in headless Chromium, driven by Playwright (run by Scripts/browser-test).

Starts the API and, later, a worker of the built binary on a private key prefix and an SQLite file,
and checks what an operator sees: the page loads; its numbers change while moves run, without a
reload; the page is read-only until Unlock administration is given the token, then Replay on a
dead job brings it back to its queue. Every process is stopped by PID and every
key and file removed, also when a check fails. Prints `browser-test: N passed, M failed`.
"""
import argparse
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from playwright.sync_api import sync_playwright

TOKEN = "bt-" + secrets.token_hex(8)


class Run:
    def __init__(self, binary, out):
        self.binary = binary
        self.out = out
        self.work = tempfile.mkdtemp(prefix="relocator-browser-")
        self.prefix = "{bt-%s}" % secrets.token_hex(4)
        self.levels = {name: os.path.join(self.work, name) for name in ("bronze", "silver", "gold")}
        for directory in self.levels.values():
            os.makedirs(directory)
        self.env = dict(os.environ, DATABASE_URL="sqlite:" + os.path.join(self.work, "relocator.sqlite"),
                        RELOCATOR_PREFIX=self.prefix, RELOCATOR_API_TOKEN=TOKEN,
                        RELOCATOR_LEVELS=",".join("%s=%s" % item for item in self.levels.items()))
        self.processes = []
        self.port = None

    def cli(self, *args):
        subprocess.run([self.binary, *args], env=self.env, check=True, stdout=subprocess.DEVNULL)

    def start(self, name, args):
        log = open(os.path.join(self.work, name + ".log"), "w")
        process = subprocess.Popen([self.binary, *args], env=self.env, stdout=subprocess.PIPE, stderr=log, text=True)
        self.processes.append(process)
        return process

    def wait_for(self, what, condition, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError("timed out waiting for " + what)

    def http(self, method, path, body=None, token=True):
        request = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), method=method,
                                         data=None if body is None else body.encode())
        if body is not None:
            request.add_header("Content-Type", "application/json" if body.startswith("{") else "application/x-www-form-urlencoded")
        if token:
            request.add_header("Authorization", "Bearer " + TOKEN)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def job(self, cid):
        status, body = self.http("GET", "/v1/jobs/%d" % cid)
        return json.loads(body) if status == 200 else None

    def cleanup(self):
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        keys = subprocess.run(["redis-cli", "-u", os.environ["REDIS_URL"], "--scan", "--pattern", self.prefix + "*"],
                              capture_output=True, text=True, check=False).stdout.split()
        for start in range(0, len(keys), 200):
            subprocess.run(["redis-cli", "-u", os.environ["REDIS_URL"], "DEL", *keys[start:start + 200]],
                           stdout=subprocess.DEVNULL, check=False)
        shutil.rmtree(self.work, ignore_errors=True)


def number(page, selector):
    return int(page.locator(selector).inner_text().strip())


def check(run, page, results):
    # Seed: 60 contents of 256 KiB on bronze, and one whose file is on no disk (it goes dead).
    run.cli("migrate")
    run.cli("levels", "--seed-default")
    rows = []
    for cid in range(1, 61):
        name = "movie-%02d.mp4" % cid
        with open(os.path.join(run.levels["bronze"], name), "wb") as file:
            file.write(os.urandom(256 * 1024))
        rows.append("%d,%s,bronze" % (cid, name))
    rows.append("99,lost.mp4,bronze")
    with open(os.path.join(run.work, "contents.csv"), "w") as file:
        file.write("\n".join(rows) + "\n")
    run.cli("contents", "import", os.path.join(run.work, "contents.csv"))
    # Watermarks on silver: the fill bars draw them.
    run.cli("levels", "set", "silver", "--high-water", "90", "--low-water", "80")

    api = run.start("api", ["serve", "--port", "0"])
    line = api.stdout.readline()
    match = re.match(r"listening on http://127\.0\.0\.1:(\d+)", line)
    assert match, "the API did not start: %r" % line
    run.port = int(match.group(1))

    # 1. The page loads, without any script error, and shows the level table.
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("dialog", lambda dialog: dialog.accept(TOKEN) if dialog.type == "prompt" else dialog.accept())
    page.goto("http://127.0.0.1:%d/ui" % run.port)
    silver = 'tr[data-level="silver"] [data-field="depth"]'
    assert number(page, silver) == 0, "silver's queue is not empty at start"
    results.append("the overview loads")

    # 2. The numbers change while moves run, without a reload: counts queue moves to silver…
    for cid in list(range(1, 61)) + [99]:
        status, body = run.http("POST", "/post_sentence", "cid=%d&count=5000" % cid)
        assert status == 200, "post_sentence: %d %s" % (status, body)
    run.wait_for("the queued moves on the page", lambda: number(page, silver) == 61, timeout=20)
    # No worker serves silver yet: a banner says so, without a reload.
    stuck = page.locator('[data-banner="stuck"]')
    run.wait_for("the banner of jobs no worker takes", lambda: stuck.count() == 1 and stuck.is_visible(), timeout=20)
    assert "61 jobs queued for silver and no live worker takes them" in stuck.inner_text(), stuck.inner_text()
    page.screenshot(path=os.path.join(run.out, "overview-queued.png"), full_page=True)
    results.append("a banner says jobs are queued that no live worker takes")
    # …and a worker drains the queue while the page watches.
    run.start("worker", ["worker", "--levels", "silver", "--concurrency", "1", "--id", "bt-worker"])
    seen = set()

    def drained():
        # One reading per look: two could straddle a refresh, the first seeing 61 and the second 0.
        depth = number(page, silver)
        seen.add(depth)
        return depth == 0 and number(page, '[data-field="dead"]') == 1

    run.wait_for("the worker to drain the queue on the page", drained, timeout=90)
    assert len(seen) >= 2, "the depth never changed on the page: %r" % seen
    assert number(page, '[data-field="moved"]') == 60, "the page does not show 60 moves"
    page.screenshot(path=os.path.join(run.out, "overview-moved.png"), full_page=True)
    results.append("the numbers change while moves run (%d distinct depths seen)" % len(seen))

    # 2b. The new parts of the overview: the stuck banner is gone, silver's fill is drawn against
    # its watermarks from the worker's disk report, the chart of moves per minute has its axes and
    # this minute's bar, workers are counted apart from committers.
    run.wait_for("the stuck banner to go", lambda: page.locator('[data-banner="stuck"]').count() == 0, timeout=20)
    fill = page.locator('tr[data-level="silver"] .fill')
    run.wait_for("silver's fill bar", lambda: fill.count() == 1 and fill.get_attribute("data-percent") not in (None, ""), timeout=20)
    assert fill.is_visible() and fill.bounding_box()["width"] > 50, "silver's fill bar is not drawn"
    assert page.locator('tr[data-level="silver"] .fill .mark.high').count() == 1, "no high watermark mark on silver's bar"
    assert page.locator('tr[data-level="silver"] .fill .mark.low').count() == 1, "no low watermark mark on silver's bar"
    assert re.match(r"^\d+\.\d %$", page.locator('tr[data-level="silver"] [data-field="fill"]').inner_text().strip())
    assert "high water 90 % · low water 80 %" in page.locator('tr[data-level="silver"] [data-field="policy"]').inner_text()
    chart = page.locator("svg#rate")
    assert chart.is_visible() and chart.bounding_box()["height"] > 100, "the chart is not drawn"
    labels = [label.text_content() for label in chart.locator("text").all()]
    assert "now" in labels and "−60 min" in labels and "per minute" in labels, "the chart has no axes: %r" % labels
    heights = [float(bar.get_attribute("height")) for bar in chart.locator("rect").all()]
    assert len(heights) == 60 and max(heights) > 0, "no bar for this hour's moves: %r" % heights
    assert number(page, '[data-field="moves-last-hour"]') == 60, "the chart does not count 60 moves this hour"
    assert number(page, '[data-field="workers-alive"]') == 1 and number(page, '[data-field="committers-alive"]') == 0
    page.locator("svg#rate").screenshot(path=os.path.join(run.out, "chart.png"))
    page.locator('tr[data-level="silver"]').screenshot(path=os.path.join(run.out, "fill-silver.png"))
    results.append("the overview draws silver's fill against its watermarks and the moves per minute with axes")

    # 2c. The other new pages render: waiting (deferred and retrying), workers apart from
    # committers with the banner of moves no committer records, placement with its fills.
    for path, selectors, name in [
            ("/ui/waiting", ["#deferred-jobs", "#retrying-jobs", '[data-pager="deferred"]'], "waiting.png"),
            ("/ui/workers", ['tr[data-worker="bt-worker"]', "#committer-list", '[data-banner="uncommitted"]'], "workers.png"),
            ("/ui/placement", ['#placement-levels tr[data-level="silver"] .fill', "#plan", "#move-matrix"], "placement.png"),
            ("/ui/levels", ['#level-table tr[data-level="silver"] .fill .mark.high'], "levels.png")]:
        page.goto("http://127.0.0.1:%d%s" % (run.port, path))
        for selector in selectors:
            assert page.locator(selector).first.is_visible(), "%s: %s is not shown" % (path, selector)
        page.screenshot(path=os.path.join(run.out, name), full_page=True)
    results.append("the waiting, workers, placement and levels pages render their new parts")

    # 3. Replay on the dead job brings it back to its queue (the page asks for the token once).
    assert run.job(99)["status"] == "dead", "cid 99 is not dead"
    with open(os.path.join(run.levels["bronze"], "lost.mp4"), "wb") as file:
        file.write(b"found again")
    page.goto("http://127.0.0.1:%d/ui/dead" % run.port)
    page.screenshot(path=os.path.join(run.out, "dead.png"), full_page=True)
    pager = page.locator('[data-pager="dead"]')
    assert pager.is_visible() and pager.inner_text().startswith("1 of 1 dead job"), pager.inner_text()
    assert "POST /post_sentence: count 5000 falls in silver" in page.locator('tr[data-cid="99"] .queued-by').inner_text()
    # Read-only until the tab gives the administrator credential.
    replay = page.locator('tr[data-cid="99"] button', has_text="Replay")
    assert not replay.is_visible(), "the Replay button shows before the administrator credential was given"
    page.locator("#unlock").click()
    run.wait_for("the page to take the administrator credential",
                 lambda: "admin" in (page.evaluate("document.body.className") or ""), timeout=10)
    replay.click()
    run.wait_for("the replayed job to leave the dead-letter list",
                 lambda: run.job(99)["status"] in ("queued", "moving", "done", "committed"), timeout=20)
    run.wait_for("the dead row to go from the page", lambda: page.locator('tr[data-cid="99"]').count() == 0, timeout=20)
    assert "relocator-token" in page.evaluate("Object.keys(sessionStorage)")
    run.wait_for("the replayed move", lambda: run.job(99)["status"] == "done", timeout=30)
    results.append("replay brings a dead job back to its queue")
    assert not errors, "script errors: %r" % errors

    # 4. A real scrape passes promtool.
    status, scrape = run.http("GET", "/metrics", token=False)
    assert status == 200, "GET /metrics answered %d" % status
    checked = subprocess.run(["promtool", "check", "metrics"], input=scrape, capture_output=True, text=True)
    assert checked.returncode == 0, "promtool: " + checked.stdout + checked.stderr
    assert 'relocator_queue_depth{level="silver",shard="0"} 0' in scrape
    results.append("promtool accepts the API's /metrics")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--out", required=True)
    options = parser.parse_args()
    run = Run(options.binary, options.out)
    results, failed = [], 0
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport={"width": 1200, "height": 900})
                try:
                    check(run, page, results)
                except Exception as error:  # noqa: BLE001 — any failure is reported with the logs
                    failed = 1
                    page.screenshot(path=os.path.join(run.out, "failure.png"), full_page=True)
                    print("browser-test: FAILED: %s: %s" % (type(error).__name__, error), file=sys.stderr)
                    for name in ("api", "worker"):
                        log = os.path.join(run.work, name + ".log")
                        if os.path.exists(log):
                            print("--- %s log (end) ---\n%s" % (name, open(log).read()[-3000:]), file=sys.stderr)
            finally:
                browser.close()
    finally:
        run.cleanup()
    for line in results:
        print("browser-test: ok — " + line)
    print("browser-test: screenshots in " + options.out)
    print("browser-test: %d passed, %d failed" % (0 if failed else 1, failed))
    return failed


if __name__ == "__main__":
    sys.exit(main())
