using System.Collections.Immutable;
using System.Reflection;
using System.Reflection.Emit;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;

namespace NicheTune.Tests.Support;

/// <summary>
/// Finds, in an assembly's IL, the calls that hand libtorch a TorchSharp <c>Scalar</c> owned only by its finalizer: a
/// call to <c>Scalar</c>'s implicit conversions (<c>t.mul(0.5)</c>), or to a TorchSharp method that makes one inside
/// (<c>a + b</c> and <c>a.add_(b)</c> pass an implicit alpha of 1). Which TorchSharp methods do is read from TorchSharp's
/// own IL: those that call the conversions or <c>ToScalar</c>, and, transitively, those that call them.
/// </summary>
internal static class ScalarCallScanner
{
    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(o => o.Value);

    /// <summary>TorchSharp's methods (as "Type::name(parameter types)") that create a finalizer-owned scalar.</summary>
    public static IReadOnlySet<string> ScalarMakingMethods(string torchSharpPath)
    {
        using var pe = new PEReader(File.OpenRead(torchSharpPath));
        MetadataReader md = pe.GetMetadataReader();
        Dictionary<string, List<string>> callees = Calls(pe, md)
            .GroupBy(c => Name(md, c.Caller))
            .ToDictionary(g => g.Key, g => g.Select(c => Name(md, c.Callee)).ToList(), StringComparer.Ordinal);
        var found = new HashSet<string>(StringComparer.Ordinal);
        bool grew = true;
        while (grew)
        {
            grew = false;
            foreach ((string caller, List<string> called) in callees)
            {
                if (!IsScalarType(caller) && !found.Contains(caller) && called.Any(c => IsScalarFactory(c) || found.Contains(c)))
                {
                    found.Add(caller);
                    grew = true;
                }
            }
        }

        return found;
    }

    /// <summary>Each call in the assembly at <paramref name="path"/> that creates a finalizer-owned scalar: "caller → callee".</summary>
    public static IReadOnlyList<string> Sites(string path, IReadOnlySet<string> scalarMaking)
    {
        using var pe = new PEReader(File.OpenRead(path));
        MetadataReader md = pe.GetMetadataReader();
        var sites = new List<string>();
        foreach ((EntityHandle caller, EntityHandle callee) in Calls(pe, md))
        {
            string name = Name(md, callee);
            if (name.StartsWith("TorchSharp.Scalar::op_Implicit", StringComparison.Ordinal) || scalarMaking.Contains(name))
            {
                sites.Add($"{Name(md, caller)} → {name}");
            }
        }

        return sites;
    }

    // The conversions themselves: Scalar's implicit operators and the ToScalar extensions.
    private static bool IsScalarFactory(string name) =>
        name.StartsWith("TorchSharp.Scalar::op_Implicit", StringComparison.Ordinal) || name.StartsWith("TorchSharp.ScalarExtensionMethods::ToScalar", StringComparison.Ordinal);

    // Scalar's own members and the extensions make scalars for their caller to own; they are the source, not a caller.
    private static bool IsScalarType(string name) =>
        name.StartsWith("TorchSharp.Scalar::", StringComparison.Ordinal) || name.StartsWith("TorchSharp.ScalarExtensionMethods::", StringComparison.Ordinal);

    private static IEnumerable<(EntityHandle Caller, EntityHandle Callee)> Calls(PEReader pe, MetadataReader md)
    {
        foreach (MethodDefinitionHandle handle in md.MethodDefinitions)
        {
            MethodDefinition method = md.GetMethodDefinition(handle);
            if (method.RelativeVirtualAddress == 0)
            {
                continue;
            }

            BlobReader il = pe.GetMethodBody(method.RelativeVirtualAddress).GetILReader();
            while (il.RemainingBytes > 0)
            {
                short value = il.ReadByte();
                if (value == 0xFE)
                {
                    value = (short)(0xFE00 | il.ReadByte());
                }

                OpCode op = OpCodesByValue[value];
                switch (op.OperandType)
                {
                    case OperandType.InlineNone:
                        break;
                    case OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar:
                        il.ReadByte();
                        break;
                    case OperandType.InlineVar:
                        il.ReadInt16();
                        break;
                    case OperandType.InlineI8 or OperandType.InlineR:
                        il.ReadInt64();
                        break;
                    case OperandType.InlineSwitch:
                        int targets = il.ReadInt32();
                        for (int i = 0; i < targets; i++)
                        {
                            il.ReadInt32();
                        }

                        break;
                    case OperandType.InlineMethod:
                        EntityHandle callee = MetadataTokens.EntityHandle(il.ReadInt32());
                        if (op == OpCodes.Call || op == OpCodes.Callvirt || op == OpCodes.Newobj)
                        {
                            yield return (handle, callee);
                        }

                        break;
                    default:
                        il.ReadInt32();
                        break;
                }
            }
        }
    }

    private static string Name(MetadataReader md, EntityHandle handle)
    {
        switch (handle.Kind)
        {
            case HandleKind.MethodDefinition:
                MethodDefinition definition = md.GetMethodDefinition((MethodDefinitionHandle)handle);
                return $"{TypeName(md, definition.GetDeclaringType())}::{md.GetString(definition.Name)}{Parameters(md, definition.Signature)}";
            case HandleKind.MemberReference:
                MemberReference reference = md.GetMemberReference((MemberReferenceHandle)handle);
                string parent = reference.Parent.Kind switch
                {
                    HandleKind.TypeReference => TypeName(md, (TypeReferenceHandle)reference.Parent),
                    HandleKind.TypeDefinition => TypeName(md, (TypeDefinitionHandle)reference.Parent),
                    HandleKind.TypeSpecification => "(generic type)",
                    _ => "?",
                };
                return $"{parent}::{md.GetString(reference.Name)}{Parameters(md, reference.Signature)}";
            case HandleKind.MethodSpecification:
                return Name(md, md.GetMethodSpecification((MethodSpecificationHandle)handle).Method);
            default:
                return "?";
        }
    }

    private static string Parameters(MetadataReader md, BlobHandle signature)
    {
        BlobReader reader = md.GetBlobReader(signature);
        if (reader.ReadSignatureHeader().Kind != SignatureKind.Method)
        {
            return "";
        }

        reader.Reset();
        MethodSignature<string> decoded = new SignatureDecoder<string, object?>(TypeNames.Instance, md, null).DecodeMethodSignature(ref reader);
        return "(" + string.Join(",", decoded.ParameterTypes) + ")";
    }

    private static string TypeName(MetadataReader md, TypeDefinitionHandle handle)
    {
        TypeDefinition type = md.GetTypeDefinition(handle);
        TypeDefinitionHandle declaring = type.GetDeclaringType();
        if (!declaring.IsNil)
        {
            return $"{TypeName(md, declaring)}/{md.GetString(type.Name)}";
        }

        string ns = md.GetString(type.Namespace);
        return ns.Length > 0 ? $"{ns}.{md.GetString(type.Name)}" : md.GetString(type.Name);
    }

    private static string TypeName(MetadataReader md, TypeReferenceHandle handle)
    {
        TypeReference type = md.GetTypeReference(handle);
        if (type.ResolutionScope.Kind == HandleKind.TypeReference)
        {
            return $"{TypeName(md, (TypeReferenceHandle)type.ResolutionScope)}/{md.GetString(type.Name)}";
        }

        string ns = md.GetString(type.Namespace);
        return ns.Length > 0 ? $"{ns}.{md.GetString(type.Name)}" : md.GetString(type.Name);
    }

    // Type names as both assemblies spell them, so a member reference in one matches the definition in the other.
    private sealed class TypeNames : ISignatureTypeProvider<string, object?>
    {
        public static readonly TypeNames Instance = new();

        public string GetArrayType(string elementType, ArrayShape shape) => $"{elementType}[{new string(',', shape.Rank - 1)}]";

        public string GetByReferenceType(string elementType) => elementType + "&";

        public string GetFunctionPointerType(MethodSignature<string> signature) => "method*";

        public string GetGenericInstantiation(string genericType, ImmutableArray<string> typeArguments) => $"{genericType}<{string.Join(",", typeArguments)}>";

        public string GetGenericMethodParameter(object? genericContext, int index) => "!!" + index;

        public string GetGenericTypeParameter(object? genericContext, int index) => "!" + index;

        public string GetModifiedType(string modifier, string unmodifiedType, bool isRequired) => unmodifiedType;

        public string GetPinnedType(string elementType) => elementType;

        public string GetPointerType(string elementType) => elementType + "*";

        public string GetPrimitiveType(PrimitiveTypeCode typeCode) => typeCode.ToString();

        public string GetSZArrayType(string elementType) => elementType + "[]";

        public string GetTypeFromDefinition(MetadataReader reader, TypeDefinitionHandle handle, byte rawTypeKind) => TypeName(reader, handle);

        public string GetTypeFromReference(MetadataReader reader, TypeReferenceHandle handle, byte rawTypeKind) => TypeName(reader, handle);

        public string GetTypeFromSpecification(MetadataReader reader, object? genericContext, TypeSpecificationHandle handle, byte rawTypeKind) => "(type specification)";
    }
}
