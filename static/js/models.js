// The models page: every model (the game's versions and outside ones) scored on MNIST test and
// on each round's verified drawings, the round's fooled rate (vMER), and the drawings that still
// fool each model. Data: GET /api/models/leaderboard (docs/http-api.md).

import { api } from "./api.js";

const percent = (value) => (value === null || value === undefined ? "–" : `${(100 * value).toFixed(1)}%`);

function cell(tag, text, extra) {
  const element = document.createElement(tag);
  element.textContent = text;
  if (extra) {
    const small = document.createElement("small");
    small.textContent = extra;
    element.append(small);
  }
  return element;
}

function renderTable(table, board) {
  const head = document.createElement("tr");
  head.append(cell("th", "model"), cell("th", "MNIST test"));
  for (const round of board.rounds) head.append(cell("th", `round ${round.number}`));
  table.tHead.replaceChildren(head);

  const rows = board.models.map((model) => {
    const row = document.createElement("tr");
    row.className = model.kind;
    row.append(cell("th", model.name, model.kind === "outside" ? "outside" : "game"));
    row.firstChild.scope = "row";
    row.append(cell("td", percent(model.mnist_accuracy)));
    for (const round of model.rounds) row.append(cell("td", percent(round.accuracy), `(${round.count})`));
    return row;
  });
  table.tBodies[0].replaceChildren(...rows);

  const foot = document.createElement("tr");
  foot.append(cell("th", "fooled rate (vMER)"), cell("td", ""));
  for (const round of board.rounds) foot.append(cell("td", percent(round.vmer), round.model_version ?? ""));
  table.tFoot.replaceChildren(foot);
  table.hidden = false;
}

function renderFooling(root, board) {
  const blocks = [];
  for (const model of board.models) {
    const drawings = model.rounds.flatMap((round) => round.fooling.map((d) => ({ ...d, round: round.number })));
    const total = model.rounds.reduce((sum, round) => sum + round.fooling_count, 0);
    const block = document.createElement("section");
    block.append(cell("h3", `${model.name}: ${total} drawing${total === 1 ? "" : "s"} still fool it`));
    const list = document.createElement("ul");
    for (const drawing of drawings) {
      const item = document.createElement("li");
      const image = document.createElement("img");
      image.src = drawing.png;
      image.alt = `drawing ${drawing.attempt_id} from round ${drawing.round}`;
      item.append(image);
      list.append(item);
    }
    block.append(list);
    blocks.push(block);
  }
  root.replaceChildren(...blocks);
}

async function main() {
  const status = document.querySelector(".models-status");
  try {
    const board = await api("/api/models/leaderboard");
    renderTable(document.querySelector(".models-table"), board);
    renderFooling(document.querySelector(".fooling"), board);
    document.querySelector(".models-note").textContent = board.note;
    status.textContent = board.rounds.length ? "" : "No verified drawings yet: only MNIST is scored.";
  } catch (error) {
    status.textContent = error.message;
  }
}

main();
