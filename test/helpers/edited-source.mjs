/** `source` whose every tensor read goes through `edit(name, values)` (which changes values in place). */
export function editedSource(source, edit) {
  return new Proxy(source, {
    get(target, prop) {
      if (prop === "read")
        return async (name, dest) => {
          const a = await target.read(name, dest);
          edit(name, a);
          return a;
        };
      const v = target[prop];
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}
