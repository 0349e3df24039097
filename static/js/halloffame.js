// This round's hall of fame: the verified fools, with what the model saw.

import { api } from "./api.js";

let asked = 0; // the newest request: an older answer that arrives late is stale

export async function loadHallOfFame(root, roundNumber) {
  const list = root.querySelector(".fame-list");
  const status = root.querySelector(".fame-status");
  const request = ++asked;
  if (roundNumber === null || roundNumber === undefined) {
    list.replaceChildren();
    status.textContent = "No round yet.";
    return;
  }
  let fools;
  try {
    fools = await api(`/api/hall-of-fame?round=${encodeURIComponent(roundNumber)}`);
  } catch (error) {
    if (request !== asked) return;
    list.replaceChildren();
    status.textContent = error.message;
    return;
  }
  if (request !== asked) return;
  status.textContent = fools.length ? "" : "No verified fools yet this round. Yours could be first.";
  list.replaceChildren(...fools.map(fameCard));
}

function fameCard(fool) {
  const item = document.createElement("li");
  item.className = "fame-card";
  const image = document.createElement("img");
  image.src = `data:image/png;base64,${fool.png}`;
  image.alt = `A ${fool.label} the model read as a ${fool.predicted}`;
  image.width = 84;
  image.height = 84;
  const caption = document.createElement("span");
  caption.textContent = `${fool.player}: ${fool.label}, seen as ${fool.predicted}`;
  item.append(image, caption);
  return item;
}
