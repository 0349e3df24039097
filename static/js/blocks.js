// The markup the play page and the spectator page share, written once: the round banner, the
// leaderboard, the hall of fame and the "harder to fool" chart. A page marks where each goes
// with an empty <div data-block="NAME"></div>; `placeBlocks()` puts the block there before the
// views look for their elements. A module rather than a build step or an inline script, so
// the pages stay plain files and work under a Content-Security-Policy without
// 'unsafe-inline'.

const BLOCKS = {
  banner: `
    <section class="banner" id="banner" aria-label="Current round" data-state="none">
      <span class="banner-item">Round <b data-field="number">–</b> <small data-field="state"></small></span>
      <span class="banner-item">Model <b data-field="model">–</b></span>
      <span class="banner-item">Fooled <b data-field="fools">0</b> times <small data-field="attempts"></small></span>
    </section>`,
  leaderboard: `
    <section class="card leaderboard" id="leaderboard" aria-labelledby="leaderboard-title">
      <h2 id="leaderboard-title" class="small-title">Leaderboard</h2>
      <div role="tablist" class="board-tabs" aria-label="Leaderboards">
        <button type="button" role="tab" data-board="round" aria-selected="true">This round</button>
        <button type="button" role="tab" data-board="all" aria-selected="false" tabindex="-1">All time</button>
        <button type="button" role="tab" data-board="validators" aria-selected="false" tabindex="-1">Validators</button>
      </div>
      <p class="board-status note" role="status" hidden></p>
      <ol class="board-rows" aria-live="off"></ol>
      <div class="board-you" hidden></div>
      <p class="note board-rules">This round is won by fooling: a verified fool outscores any
        amount of validating here. Validating scores in full on the Validators board.</p>
    </section>`,
  fame: `
    <section class="card fame" id="fame" aria-labelledby="fame-title">
      <h2 id="fame-title" class="small-title">Hall of fame: this round's fools</h2>
      <p class="fame-status note"></p>
      <ul class="fame-list"></ul>
    </section>`,
  history: `
    <section class="card history" id="history" aria-labelledby="history-title">
      <h2 id="history-title" class="small-title">Harder to fool, round by round</h2>
      <svg class="chart" role="img" hidden aria-label="Model accuracy and error rate per version"></svg>
      <ul class="legend" hidden>
        <li class="series-mnist">MNIST accuracy</li>
        <li class="series-heldout">players' drawings</li>
        <li class="series-vmer">fooled rate (vMER), with its 95% interval</li>
      </ul>
      <p class="note chart-note">A fooled rate appears once enough drawings were tried on a model.</p>
      <p class="chart-status note"></p>
      <div class="sr-only"><table class="chart-table">
        <caption>Per model version</caption>
        <thead><tr><th>version</th><th>MNIST accuracy</th><th>held-out accuracy</th><th>vMER</th></tr></thead>
        <tbody></tbody>
      </table></div>
    </section>`,
};

// Replace every <div data-block="NAME"> of the page with its block.
export function placeBlocks(root = document) {
  for (const slot of root.querySelectorAll("[data-block]")) {
    const markup = BLOCKS[slot.dataset.block];
    if (markup === undefined) throw new Error(`no block named ${slot.dataset.block}`);
    const template = document.createElement("template");
    template.innerHTML = markup.trim();
    slot.replaceWith(template.content);
  }
}
