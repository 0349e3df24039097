// Ten probability bars, one per digit: the model's live guess.

export class GuessBars {
  constructor(list, summary) {
    this.list = list;
    this.summary = summary; // a polite live region: announced only when the top guess changes
    this.rows = [];
    this.topLabel = null;
    for (let digit = 0; digit < 10; digit++) {
      const row = document.createElement("li");
      row.className = "bar";
      row.innerHTML = `<span class="bar-value">–</span>
        <span class="bar-track"><span class="bar-fill"></span></span>
        <span class="bar-digit">${digit}</span>`;
      list.append(row);
      this.rows.push(row);
    }
    this.reset();
  }

  reset() {
    this.show(null);
  }

  // `probs`: ten numbers summing to ~1, or null for "no guess yet".
  show(probs) {
    const top = probs ? probs.indexOf(Math.max(...probs)) : null;
    this.rows.forEach((row, digit) => {
      const p = probs ? probs[digit] : 0;
      row.querySelector(".bar-fill").style.transform = `scaleY(${p})`;
      row.querySelector(".bar-value").textContent = probs ? `${Math.round(p * 100)}%` : "–";
      row.classList.toggle("best", digit === top);
      row.setAttribute("aria-label", probs ? `${digit}: ${Math.round(p * 100)} percent` : `${digit}`);
    });
    this.list.dataset.top = top ?? "";
    if (top !== this.topLabel) {
      this.topLabel = top;
      this.summary.textContent =
        top === null ? "Draw a digit to see the model's guess." : `The model sees a ${top}.`;
    }
  }
}
