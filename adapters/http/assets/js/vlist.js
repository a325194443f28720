// A virtualized list: only the rows in view (plus a margin) exist in the DOM,
// recycled as the list scrolls, so 10,000 rows scroll like 40.

export class VirtualList {
  /**
   * @param scroller the scrolling element (fixed height, overflow auto)
   * @param rowHeight pixels per row
   * @param render (rowElement, item, index) => void fills a recycled row
   * @param create () => rowElement makes an empty row
   */
  constructor(scroller, rowHeight, create, render) {
    this.scroller = scroller;
    this.rowHeight = rowHeight;
    this.create = create;
    this.render = render;
    this.items = [];
    this.spacer = document.createElement("div");
    this.spacer.className = "vspacer";
    this.scroller.append(this.spacer);
    this.pool = [];
    this.first = -1;
    this.frame = 0;
    this.dirty = true;
    this.onScroll = () => this.schedule(false);
    scroller.addEventListener("scroll", this.onScroll, { passive: true });
    this.resize = new ResizeObserver(() => this.schedule(true));
    this.resize.observe(scroller);
  }

  /** Replaces the items (an array the caller keeps ordering). */
  setItems(items) {
    this.items = items;
    this.schedule(true);
  }

  /** Marks the content changed (an item updated in place or inserted). */
  refresh() {
    this.schedule(true);
  }

  schedule(dirty) {
    this.dirty = this.dirty || dirty;
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  draw() {
    const n = this.items.length;
    const h = this.rowHeight;
    this.spacer.style.height = `${n * h}px`;
    const top = this.scroller.scrollTop;
    const view = this.scroller.clientHeight;
    const margin = 6;
    const first = Math.max(0, Math.floor(top / h) - margin);
    const last = Math.min(n, Math.ceil((top + view) / h) + margin);
    const count = Math.max(0, last - first);
    // Enough rows for the viewport plus margins; the pool only grows.
    const want = Math.ceil(view / h) + 2 * margin + 1;
    while (this.pool.length < want) {
      const row = this.create();
      row.setAttribute("role", "row");
      row.hidden = true;
      this.spacer.append(row);
      this.pool.push(row);
    }
    const size = this.pool.length;
    // Row `index` always lives in slot `index % size`: while it stays in
    // view its element is left alone, so a scroll redraws only the rows
    // that come into view.
    const used = new Set();
    for (let index = first; index < last; index++) {
      const slot = index % size;
      used.add(slot);
      const row = this.pool[slot];
      const item = this.items[index];
      if (row.hidden) row.hidden = false;
      if (row._index !== index) {
        row.style.transform = `translateY(${index * h}px)`;
        row.setAttribute("aria-rowindex", String(index + 2));
      }
      if (this.dirty || row._item !== item || row._index !== index) {
        row._item = item;
        row._index = index;
        this.render(row, item, index);
      }
    }
    for (let slot = 0; slot < size; slot++) {
      if (!used.has(slot) && !this.pool[slot].hidden) {
        this.pool[slot].hidden = true;
        this.pool[slot]._index = -1;
      }
    }
    this.first = first;
    this.count = count;
    this.dirty = false;
  }

  /** Rows currently in the DOM (for tests and focus handling). */
  visibleRows() {
    return this.pool.filter((r) => !r.hidden);
  }

  destroy() {
    cancelAnimationFrame(this.frame);
    this.scroller.removeEventListener("scroll", this.onScroll);
    this.resize.disconnect();
  }
}
