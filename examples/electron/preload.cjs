// Exposes the main process's model to the page, and nothing else of Node.
const { contextBridge, ipcRenderer } = require("electron");

contextBridge.exposeInMainWorld("metalaMain", {
  info: () => ipcRenderer.invoke("metala:info"),
  generate: (prompt, options) => ipcRenderer.invoke("metala:generate", prompt, options),
});
