// Tidies an executed notebook and checks it: `dotnet run eng/notebook-outputs.cs -- NOTEBOOK [FEED]`.
// dotnet-repl saves every progress update of a package restore as its own output; only the last one says anything, so the
// others are dropped, and so is the kernel's note that it loaded a package's notebook extension (it names this machine's
// NuGet cache). The feed's absolute path (this machine's) is written as the relative path the notebook resolves.
// Fails (exit 1) when the notebook has an error output or no image output: a notebook whose plots are missing is broken.
using System.Text.Json;
using System.Text.Json.Nodes;

if (args.Length is < 1 or > 2)
{
    Console.Error.WriteLine("usage: dotnet run eng/notebook-outputs.cs -- NOTEBOOK [FEED]");
    return 2;
}

string path = args[0];
string? feed = args.Length == 2 ? Path.GetFullPath(args[1]).TrimEnd('/') : null;
var notebook = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
int images = 0, errors = 0;
foreach (JsonObject cell in notebook["cells"]!.AsArray().Cast<JsonObject>())
{
    if (cell["outputs"] is not JsonArray outputs)
    {
        continue;
    }

    var kept = new List<JsonNode>();
    foreach (JsonNode output in outputs.Select(o => o!.DeepClone()))
    {
        if (Text(output["data"]?["text/plain"]).StartsWith("Loading extensions from ", StringComparison.Ordinal))
        {
            continue;
        }

        string html = Text(output["data"]?["text/html"]);
        bool progress = html.Contains("<strong>Restore sources</strong>") || html.Contains("<strong>Installing Packages</strong>");
        if (progress && kept.Count > 0 && Text(kept[^1]["data"]?["text/html"]).Contains("<strong>Restore sources</strong>"))
        {
            kept[^1] = output;
        }
        else
        {
            kept.Add(output);
        }

        images += output["data"]?["image/png"] is not null || output["data"]?["image/svg+xml"] is not null ? 1 : 0;
        errors += (string?)output["output_type"] == "error" ? 1 : 0;
    }

    if (feed is not null)
    {
        foreach (JsonNode output in kept)
        {
            if (output["data"]?["text/html"] is JsonNode node)
            {
                output["data"]!["text/html"] = Text(node).Replace(feed, "artifacts/packages", StringComparison.Ordinal);
            }
        }
    }

    cell["outputs"] = new JsonArray([.. kept]);
}

string temporary = path + ".tmp";
File.WriteAllText(temporary, notebook.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n");
File.Move(temporary, path, overwrite: true);

if (errors > 0 || images == 0)
{
    Console.Error.WriteLine($"{path}: {errors} error output(s), {images} image output(s); a notebook must run without errors and show its plots.");
    return 1;
}

Console.WriteLine($"{path}: {images} image output(s), no errors.");
return 0;

static string Text(JsonNode? node) => node switch
{
    null => "",
    JsonArray lines => string.Concat(lines.Select(l => (string?)l)),
    _ => (string?)node ?? "",
};
