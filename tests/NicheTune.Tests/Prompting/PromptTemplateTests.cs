using FluentAssertions;
using NicheTune.Prompting;
using Xunit;

namespace NicheTune.Tests.Prompting;

public sealed class PromptTemplateTests
{
    [Fact]
    public void Render_RoleAndInstruction_FillsSlotsAndUnescapesBraces()
    {
        var template = new PromptTemplate("Classify {{JSON}}: {text}").WithRolePrefix();
        template.Slots.Should().Equal("role", "text");
        template.Render(("role", "network engineer"), ("text", "a {weird} packet")).Should().Be("As a network engineer, Classify {JSON}: a {weird} packet");
    }

    [Fact]
    public void Render_MissingValue_NamesSlotAndKnownSlots()
    {
        var template = new PromptTemplate("As a {role}, {instruction}");
        var act = () => template.Render(("role", "admin"));
        act.Should().Throw<ArgumentException>().WithMessage("Missing value for slot 'instruction'; the template's slots are 'role', 'instruction'.*");
    }

    [Fact]
    public void Render_UnknownSlot_NamesItAndKnownSlots()
    {
        var template = new PromptTemplate("As a {role}, {instruction}");
        var act = () => template.Render(("role", "admin"), ("instruction", "x"), ("rol", "typo"));
        act.Should().Throw<ArgumentException>().WithMessage("Value given for unknown slot 'rol'; the template's slots are 'role', 'instruction'.*");
    }

    [Theory]
    [InlineData("Text: {text", "Unclosed '{' at position 6*")]
    [InlineData("Text} {text}", "Unmatched '}' at position 4*")]
    [InlineData("Text: {}", "Invalid slot name '' at position 6*")]
    [InlineData("Text: {two words}", "Invalid slot name 'two words'*")]
    public void Constructor_MalformedTemplate_ThrowsWithPosition(string template, string message)
    {
        var act = () => new PromptTemplate(template);
        act.Should().Throw<ArgumentException>().WithMessage(message).Which.ParamName.Should().Be("template");
    }

    [Fact]
    public void Constructor_AllowedSlots_RejectsMisspeltSlot()
    {
        var act = () => new PromptTemplate("Text: {txt}", ["text", "role"]);
        act.Should().Throw<ArgumentException>().WithMessage("*slot '{txt}' is not one of the allowed slots ('text', 'role')*");
    }

    [Fact]
    public void Fill_OneSlot_LeavesOthersOpenAndKeepsLiteralBraces()
    {
        PromptTemplate partial = new PromptTemplate("{{x}} As a {role}, {text}").Fill("role", "DBA {senior}");
        partial.Slots.Should().Equal("text");
        partial.Render(("text", "hi")).Should().Be("{x} As a DBA {senior}, hi");
    }
}
