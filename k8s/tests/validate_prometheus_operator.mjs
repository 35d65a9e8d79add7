// Validates PrometheusRule / ServiceMonitor objects (JSON array on stdin) with the schemas of the
// @kubernetes-models/prometheus-operator package in the node_modules folder given as argument.
// Prints a JSON array: null for a valid object, else the error text.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const modules = process.argv[2];
const objects = JSON.parse(readFileSync(0, "utf8"));
const results = [];
for (const o of objects) {
  const [group, version] = o.apiVersion.split("/");
  const file = join(modules, "@kubernetes-models/prometheus-operator", group, version, `${o.kind}.js`);
  const mod = await import(pathToFileURL(file).href);
  try {
    new mod[o.kind](o).validate();
    results.push(null);
  } catch (e) {
    results.push(String(e.message || e));
  }
}
process.stdout.write(JSON.stringify(results));
