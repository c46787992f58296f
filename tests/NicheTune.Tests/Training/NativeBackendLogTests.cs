using FluentAssertions;
using Microsoft.Extensions.Logging;
using NicheTune.Tests.Support;
using NicheTune.Text;
using NicheTune.Training;
using Xunit;

namespace NicheTune.Tests.Training;

[Collection(TorchCollection.Name)]
public sealed class NativeBackendLogTests
{
    [Fact]
    public void Fit_WithLogging_LogsDeviceAndBackendBeforeTrainingStarts()
    {
        var train = TestData.FoldocLanguageModeling(length: 32, trainEntries: 10, validationEntries: 0).Train;
        var captured = new MessageLoggerProvider();
        using var loggerFactory = LoggerFactory.Create(b => b.AddProvider(captured).SetMinimumLevel(LogLevel.Information));
        using var model = new TinyCausalLm(ByteTokenizer.VocabularySize);

        FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling()).WithBatchSize(2).WithMaxSteps(2)
            .WithLogging(loggerFactory).Fit(train);

        var backend = captured.Messages.Should().ContainSingle(m => m.Id.Name == "NativeBackend").Which;
        backend.Id.Id.Should().Be(13);
        backend.Text.Should().Contain("device cpu").And.Contain("libtorch 2.10").And.Contain("CPU build").And.Contain("libtorch_cpu.so")
            .And.Contain($"{TorchSharp.torch.get_num_threads()} intra-op");
        captured.Messages.FindIndex(m => m.Id.Name == "NativeBackend")
            .Should().BeLessThan(captured.Messages.FindIndex(m => m.Id.Name == "TrainingStarted"));
    }

    private sealed class MessageLoggerProvider : ILoggerProvider
    {
        public List<(EventId Id, string Text)> Messages { get; } = [];

        public ILogger CreateLogger(string categoryName) => new MessageLogger(this);

        public void Dispose()
        {
        }

        private sealed class MessageLogger(MessageLoggerProvider owner) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                lock (owner.Messages)
                {
                    owner.Messages.Add((eventId, formatter(state, exception)));
                }
            }
        }
    }
}
