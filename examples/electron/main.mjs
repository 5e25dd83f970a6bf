// An Electron app using metala both ways:
//   main process: the Node build (main-model.mjs), reached from the page over IPC
//   renderer:     the browser build in a Web Worker, with WebGPU and threads
// Run: npm install && npm start (in this folder, after `npm run build` in the package).
import { app, BrowserWindow, ipcMain } from "electron";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startDemoServer } from "../web/server.mjs";
import { createMainModel } from "./main-model.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const packageRoot = join(here, "..", "..");
const modelDir = process.env.METALA_MODEL ?? join(packageRoot, "models", "metala-brown");

// WebGPU in the renderer: on by default on Windows, macOS and ChromeOS; Linux
// needs both switches (Vulkan backend), and they must be set before "ready".
app.commandLine.appendSwitch("enable-unsafe-webgpu");
app.commandLine.appendSwitch("enable-features", "Vulkan");

app.whenReady().then(async () => {
  // The renderer page comes from the package's local server (127.0.0.1 only):
  // it sends COOP/COEP, which make the page cross-origin isolated so the CPU
  // engine may use threads, and it serves byte ranges for the model loader.
  // A file:// page is never cross-origin isolated.
  const server = await startDemoServer({ root: packageRoot, port: 0 });
  const mainModel = await createMainModel(modelDir);
  ipcMain.handle("metala:info", () => mainModel.info);
  ipcMain.handle("metala:generate", (_event, prompt, options) => mainModel.generate(prompt, options));

  const win = new BrowserWindow({
    width: 1000,
    height: 800,
    webPreferences: { preload: join(here, "preload.cjs"), contextIsolation: true, sandbox: true, nodeIntegration: false },
  });
  await win.loadURL(`${server.url}/examples/electron/renderer/`);

  app.on("window-all-closed", async () => {
    await mainModel.dispose();
    await server.close();
    app.quit();
  });
});
