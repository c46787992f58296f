using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NicheTune.Tests.Support;

/// <summary>A module whose parameters carry exactly the given dotted names: stands in for BERT- or Llama-named models.</summary>
internal sealed class NamedTree : nn.Module<Tensor, Tensor>
{
    private readonly Dictionary<string, NamedTree> _children = new(StringComparer.Ordinal);

    private NamedTree(string name) : base(name)
    {
    }

    public static NamedTree Build(params string[] parameterNames)
    {
        var root = new NamedTree("root");
        foreach (string full in parameterNames)
        {
            string[] parts = full.Split('.');
            NamedTree node = root;
            for (int i = 0; i < parts.Length - 1; i++)
            {
                if (!node._children.TryGetValue(parts[i], out NamedTree? child))
                {
                    child = new NamedTree(parts[i]);
                    node._children[parts[i]] = child;
                    node.register_module(parts[i], child);
                }

                node = child;
            }

            bool vector = parts[^1] == "bias" || full.Contains("norm", StringComparison.OrdinalIgnoreCase);
            node.register_parameter(parts[^1], new Parameter(vector ? torch.randn(4) : torch.randn(4, 4)));
        }

        return root;
    }

    public override Tensor forward(Tensor input) => input;
}
