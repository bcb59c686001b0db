// Every visible control: its touch target (the label's box for a radio or checkbox, which is
// what the finger hits) and its accessible name. Returns those under 48x48 CSS px or unnamed.
() => {
  const hiddenAway = (n) => n.closest("[hidden], .visually-hidden, dialog:not([open])");
  const problems = [];
  let checked = 0;
  const selector = "button, a[href], input, select, textarea, label.button, [role=button]:not(.region)";
  for (const node of document.querySelectorAll(selector)) {
    const target = node.type === "radio" || node.type === "checkbox" ? node.closest("label") : node;
    const box = target.getBoundingClientRect();
    if (node.type === "hidden" || hiddenAway(target) || !box.width || !box.height) continue;
    checked += 1;
    const labels = node.labels ? [...node.labels].map((l) => l.textContent).join(" ") : "";
    const name = (node.getAttribute("aria-label") || labels || node.textContent || "").trim();
    const what = node.id || node.outerHTML.slice(0, 60);
    if (box.width < 48 || box.height < 48) {
      problems.push(`${what}: ${Math.round(box.width)}x${Math.round(box.height)} px`);
    }
    if (!name) problems.push(`${what}: no accessible name`);
  }
  return { checked, problems };
}
